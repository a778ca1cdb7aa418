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

#include "ping_pong.h"

enum { kRounds = 4000 };

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
    const char* why = board_play(sysv, t);
    if (why == NULL) {
      why = board_play(posix, t);
    }
    if (why != NULL) {
      if (me == 1) {
        _exit(1);
      }
      shm_unlink(name);
      e2e_fail("turn %llu: %s", (unsigned long long)t, why);
    }
    board_pace();
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
