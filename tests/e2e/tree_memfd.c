// e2e case: a parent and its child play ping-pong through a memfd and through a deleted file,
// each mapped MAP_SHARED by both from the descriptor the child inherited (one open file
// description), each side checking every value the other wrote. Both objects must come back as
// one object for the two processes: a copy per process stalls the game.
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>
#include <sys/wait.h>

#include "ping_pong.h"

enum { kRounds = 4000 };

static struct Board* map_board(int fd) {
  E2E_CHECK(ftruncate(fd, 4096) == 0, "ftruncate: %s", strerror(errno));
  void* p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  E2E_CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
  return p;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  int mfd = memfd_create("vos-e2e-board", MFD_CLOEXEC);
  char path[4096];
  snprintf(path, sizeof path, "%s/board.deleted", e2e_dir);
  int dfd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  E2E_CHECK(mfd >= 0 && dfd >= 0, "setup: %s", strerror(errno));
  unlink(path);
  struct Board* boards[2] = {map_board(mfd), map_board(dfd)};
  pid_t child = fork();
  E2E_CHECK(child >= 0, "fork: %s", strerror(errno));
  int me = child == 0 ? 1 : 0;
  for (uint64_t t = 0; t < 2 * kRounds; ++t) {
    if (t % 2 != (uint64_t)me) {
      continue;
    }
    for (int b = 0; b < 2; ++b) {
      const char* why = board_play(boards[b], t);
      if (why != NULL) {
        if (me == 1) {
          _exit(1);
        }
        e2e_fail("turn %llu, %s: %s", (unsigned long long)t, b == 0 ? "memfd" : "deleted file",
                 why);
      }
    }
    board_pace();
    if (me == 0 && t == 200) {
      e2e_ready();
      if (e2e_sabotage()) {
        boards[0]->value ^= 1;
      }
    }
  }
  if (me == 1) {
    _exit(0);
  }
  int st = 0;
  E2E_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "the child ended with status %#x", st);
  e2e_pass();
}
