// e2e case (runs under vos, made for `vos restore --lazy`): a tree of a parent and three forked
// workers, each with 64 MiB of its own private memory (a pattern of its own index) besides the
// parent's copy-on-write pages they share since the fork. Restored lazily, every process must
// find each of its words right while the keeper still copies them in: its own memory, and the
// inherited region, which the parent changed after the fork (so the processes' copies differ).
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>
#include <sys/wait.h>

#include "e2e_common.h"

enum { kPage = 4096, kWorkers = 3 };
static const size_t kRegion = 64u << 20;
static const uint64_t kSeed = 0x6c617a7974726565ULL;

static uint64_t word_at(uintptr_t where, uint64_t who) {
  return e2e_mix(where ^ kSeed ^ (who << 56));
}

static void fill(uint64_t* words, uint64_t who) {
  for (size_t i = 0; i < kRegion / 8; i++) {
    words[i] = word_at((uintptr_t)(words + i), who);
  }
}

// 0 if every word holds `who`'s pattern, else 1 (said on stderr).
static int check(const char* what, const uint64_t* words, uint64_t who) {
  for (size_t i = kRegion / 8; i-- > 0;) {
    if (words[i] != word_at((uintptr_t)(words + i), who)) {
      fprintf(stderr, "lazy_tree: %s: word %zu at %p is %#llx\n", what, i, (const void*)(words + i),
              (unsigned long long)words[i]);
      return 1;
    }
  }
  return 0;
}

static uint64_t* region(void) {
  uint64_t* m = mmap(NULL, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
  return m;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  uint64_t* inherited = region();
  fill(inherited, 0);
  int done[2];
  E2E_CHECK(pipe(done) == 0, "pipe: %s", strerror(errno));
  pid_t workers[kWorkers];
  for (int w = 0; w < kWorkers; w++) {
    workers[w] = fork();
    E2E_CHECK(workers[w] >= 0, "fork: %s", strerror(errno));
    if (workers[w] == 0) {
      close(done[1]);
      uint64_t* own = region();
      fill(own, (uint64_t)w + 1);
      char c;
      E2E_CHECK(read(done[0], &c, 1) == 1, "worker %d: no go", w);  // the parent is ready
      double since = e2e_now();
      int missing = e2e_wait_lazy_restore((const char*)own + kRegion - kPage, since);
      if (e2e_sabotage() && w == 1) {
        own[kRegion / 16] ^= 1;
      }
      int bad = check("its own memory", own, (uint64_t)w + 1) | check("inherited", inherited, 0);
      _exit(bad ? 1 : missing ? 0 : 3);
    }
  }
  fill(inherited, 9);  // the parent's copy differs from the workers' from here on
  sleep(1);            // the workers' own memory filled
  e2e_ready();
  E2E_CHECK(write(done[1], "gggg", kWorkers) == kWorkers, "write: %s", strerror(errno));
  int missing = e2e_wait_lazy_restore((const char*)inherited + kRegion - kPage, e2e_ready_time);
  int bad = check("the parent's copy", inherited, 9);
  int untested = !missing;
  for (int w = 0; w < kWorkers; w++) {
    int st = 0;
    E2E_CHECK(waitpid(workers[w], &st, 0) == workers[w], "waitpid: %s", strerror(errno));
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    E2E_CHECK(code == 0 || code == 3, "worker %d found wrong memory (status %d)", w, code);
    untested |= code == 3;
  }
  E2E_CHECK(!bad, "the parent found wrong memory");
  if (untested) {
    e2e_write_file("untested", "a process found its memory all in at its first look\n");
  }
  e2e_pass();
}
