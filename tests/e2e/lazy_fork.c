// e2e case (runs under vos, made for `vos restore --lazy`): the moment it finds its memory
// missing (a lazy restore), the program forks. The child's copy of the memory is made by the
// kernel from the parent's page tables, so pages the keeper has not copied in yet are missing
// in the child too: unless the keeper serves the child as well, they read as zeros there. The
// child checks every word from the top down (where the background copy comes last) and forks a
// grandchild that does the same; the parent checks its own memory once both reported.
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>
#include <sys/wait.h>

#include "e2e_common.h"

enum { kPage = 4096 };
static const size_t kRegion = 192u << 20;
static const uint64_t kSeed = 0x6c617a79666f726bULL;

static uint64_t word_at(uintptr_t where) {
  return e2e_mix(where ^ kSeed);
}

// Returns the index of the first wrong word from the top, or -1.
static long first_wrong(const uint64_t* words) {
  for (size_t i = kRegion / 8; i-- > 0;) {
    if (words[i] != word_at((uintptr_t)(words + i))) {
      return (long)i;
    }
  }
  return -1;
}

// Forks a process that checks the memory (and, at `depth` > 0, forks one more that does);
// returns its exit status: 0 all words right, 1 a wrong word, 2 its own child failed.
static int checked_in_child(const uint64_t* words, int depth) {
  pid_t c = fork();
  E2E_CHECK(c >= 0, "fork: %s", strerror(errno));
  if (c == 0) {
    int below = depth > 0 ? checked_in_child(words, depth - 1) : 0;
    long bad = first_wrong(words);
    if (bad >= 0) {
      fprintf(stderr, "lazy_fork: depth %d: word %ld at %p is %#llx\n", depth, bad,
              (const void*)(words + bad), (unsigned long long)words[bad]);
      _exit(1);
    }
    _exit(below == 0 ? 0 : 2);
  }
  int st = 0;
  E2E_CHECK(waitpid(c, &st, 0) == c, "waitpid: %s", strerror(errno));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  uint64_t* words = mmap(NULL, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(words != MAP_FAILED, "mmap: %s", strerror(errno));
  for (size_t i = 0; i < kRegion / 8; i++) {
    words[i] = word_at((uintptr_t)(words + i));
  }
  e2e_ready();

  // Waits for the restore (the moment a page is missing); a direct run goes on after 3 s.
  if (!e2e_wait_lazy_restore((const char*)words + kRegion - kPage, e2e_ready_time)) {
    e2e_write_file("untested",
                   "its memory was all in at its first look: it forked only after "
                   "the lazy server was done\n");
  }
  if (e2e_sabotage()) {
    words[kRegion / 16] ^= 1;
  }
  int child = checked_in_child(words, 1);
  E2E_CHECK(child == 0, "the forked %s found wrong memory (status %d)",
            child == 2 ? "grandchild" : "child", child);
  long bad = first_wrong(words);
  E2E_CHECK(bad < 0, "word %ld of the parent is wrong", bad);
  e2e_pass();
}
