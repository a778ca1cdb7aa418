// e2e case: two processes (a parent and its child) play ping-pong through System V shared memory
// (a segment both attach) and POSIX shared memory (shm_open + mmap of /dev/shm, by both), each
// side checking every value the other wrote and answering with its own. The memory must come
// back shared between the two processes, and changed by both after the restore: a copy per
// process would stall the game (each waiting for a turn the other took elsewhere).
#define _GNU_SOURCE  // before any libc header
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "e2e_common.h"

enum { kRounds = 6000 };

struct Board {
  volatile uint64_t turn;   // odd: the child's, even: the parent's
  volatile uint64_t value;  // what the last mover wrote
};

static uint64_t expected(uint64_t turn) {
  return e2e_mix(turn * 2654435761u);
}

// Waits (at most 3 s) for `board` to reach `turn`, then checks the other side's value and plays.
static const char* play(struct Board* b, uint64_t turn) {
  double give_up = e2e_now() + 3.0;
  while (__atomic_load_n(&b->turn, __ATOMIC_ACQUIRE) != turn) {
    if (e2e_now() > give_up) {
      return "the other side never played";
    }
    e2e_sleep_until(e2e_now() + 0.0002);
  }
  if (turn > 0 && b->value != expected(turn - 1)) {
    return "the other side's value is wrong";
  }
  b->value = expected(turn);
  __atomic_store_n(&b->turn, turn + 1, __ATOMIC_RELEASE);
  return NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  char name[64];
  snprintf(name, sizeof name, "/vos-e2e-tree-shm-%d", (int)getpid());
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (id < 0 || fd < 0 || ftruncate(fd, 4096) != 0) {
    e2e_fail("setup: %s", strerror(errno));
  }
  struct Board* sysv = shmat(id, NULL, 0);
  struct Board* posix = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  shmctl(id, IPC_RMID, NULL);  // gone once both detach: nothing left behind
  if (sysv == (void*)-1 || posix == MAP_FAILED) {
    e2e_fail("attach: %s", strerror(errno));
  }
  pid_t child = fork();
  if (child < 0) {
    e2e_fail("fork: %s", strerror(errno));
  }
  int me = child == 0 ? 1 : 0;
  for (uint64_t t = 0; t < 2 * kRounds; ++t) {
    if (t % 2 != (uint64_t)me) {
      continue;
    }
    const char* why = play(sysv, t);
    if (why == NULL) {
      why = play(posix, t);
    }
    if (why != NULL) {
      if (me == 1) {
        _exit(1);
      }
      shm_unlink(name);
      e2e_fail("turn %llu: %s", (unsigned long long)t, why);
    }
    if (me == 0 && t == 200) {
      e2e_ready();
      if (e2e_sabotage()) {
        posix->value ^= 1;
      }
    }
  }
  if (me == 1) {
    _exit(0);
  }
  shm_unlink(name);
  int st = 0;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    e2e_fail("the child ended with status %#x", st);
  }
  e2e_pass();
}
