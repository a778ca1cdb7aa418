// e2e case: groups and sessions whose leader has ended, as daemons and shells leave them. A
// child A calls setsid and forks B (which forks C), then A ends: B (now init's child) and C are
// in session A and group A, whose leader is gone. Another child P makes group P and forks Q,
// then P ends: Q (init's child) is in group P, in the first process's session. Each of B, C, Q
// reports its session, group and parent many times a second through shared memory, and the
// first process checks every report; the groups must still exist (kill(-id, 0)) and the
// leaders' pids must stay free. After a restore all must be as before: same sessions, groups
// and parents, and no process with the leaders' pids once the restore is done.
#define _GNU_SOURCE  // before any libc header
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "e2e_common.h"

enum { kB, kC, kQ, kSlots };

struct Slot {
  volatile int32_t sid, pgid, ppid;
  volatile uint64_t reports;
  volatile int32_t done;
};

struct Board {
  volatile int32_t stop;
  struct Slot slot[kSlots];
};

static struct Board* board;

static void report_until_stopped(int who) {
  struct Slot* s = &board->slot[who];
  while (!__atomic_load_n(&board->stop, __ATOMIC_ACQUIRE)) {
    s->sid = getsid(0);
    s->pgid = getpgid(0);
    s->ppid = getppid();
    __atomic_add_fetch(&s->reports, 1, __ATOMIC_RELEASE);
    e2e_sleep_until(e2e_now() + 0.001);
  }
}

static void reap(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  board = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(board != MAP_FAILED, "mmap: %s", strerror(errno));
  int ready[2];
  E2E_CHECK(pipe(ready) == 0, "pipe: %s", strerror(errno));
  pid_t a = fork();
  if (a == 0) {
    setsid();
    pid_t b = fork();
    if (b == 0) {
      pid_t c = fork();
      if (c == 0) {
        report_until_stopped(kC);
        board->slot[kC].done = 1;
        _exit(0);
      }
      char byte = 'b';
      (void)!write(ready[1], &byte, 1);
      report_until_stopped(kB);
      reap(c);
      board->slot[kB].done = 1;
      _exit(0);
    }
    char byte = 0;
    (void)!read(ready[0], &byte, 1);  // B runs before A ends (and B is init's)
    _exit(0);
  }
  pid_t p = fork();
  if (p == 0) {
    setpgid(0, 0);
    pid_t q = fork();
    if (q == 0) {
      if (e2e_sabotage()) {
        setpgid(0, 0);
      }
      report_until_stopped(kQ);
      board->slot[kQ].done = 1;
      _exit(0);
    }
    _exit(0);
  }
  E2E_CHECK(a > 0 && p > 0, "fork: %s", strerror(errno));
  reap(a);
  reap(p);
  int32_t my_sid = getsid(0);
  // Every process has reported twice since A and P ended (a report from before may still
  // name A as B's parent).
  uint64_t at_reap[kSlots];
  for (int i = 0; i < kSlots; ++i) {
    at_reap[i] = __atomic_load_n(&board->slot[i].reports, __ATOMIC_ACQUIRE);
  }
  for (double give_up = e2e_now() + 10; e2e_now() < give_up;) {
    int fresh = 0;
    for (int i = 0; i < kSlots; ++i) {
      fresh += board->slot[i].reports >= at_reap[i] + 2;
    }
    if (fresh == kSlots) {
      break;
    }
    e2e_sleep_until(e2e_now() + 0.001);
  }
  uint64_t at_ready[kSlots] = {0};
  double end = 0;
  for (int round = 0;; ++round) {
    for (int i = 0; i < kSlots; ++i) {
      uint64_t r = __atomic_load_n(&board->slot[i].reports, __ATOMIC_ACQUIRE);
      E2E_CHECK(r > 0, "process %d never reported", i);
      if (round == 300) {
        at_ready[i] = r;
      }
    }
    const struct Slot* s = board->slot;
    E2E_CHECK(s[kB].sid == a && s[kB].pgid == a && s[kB].ppid == 1,
              "B: session %d group %d parent %d, want %d %d 1", s[kB].sid, s[kB].pgid, s[kB].ppid,
              a, a);
    E2E_CHECK(s[kC].sid == a && s[kC].pgid == a && s[kC].ppid != 1,
              "C: session %d group %d parent %d, want %d %d B", s[kC].sid, s[kC].pgid,
              s[kC].ppid, a, a);
    E2E_CHECK(s[kQ].sid == my_sid && s[kQ].pgid == p && s[kQ].ppid == 1,
              "Q: session %d group %d parent %d, want %d %d 1", s[kQ].sid, s[kQ].pgid,
              s[kQ].ppid, my_sid, p);
    E2E_CHECK(kill(-a, 0) == 0 && kill(-p, 0) == 0, "a group is gone: %s", strerror(errno));
    if (round == 300) {
      e2e_ready();
      end = e2e_now() + 2.5;
    }
    if (end != 0 && e2e_now() > end) {
      break;
    }
    e2e_sleep_until(e2e_now() + 0.002);
  }
  for (int i = 0; i < kSlots; ++i) {
    E2E_CHECK(board->slot[i].reports > at_ready[i] + 100, "process %d stopped reporting", i);
  }
  // The leaders stay ended (a restore's helpers for them are gone by now).
  E2E_CHECK(kill(a, 0) != 0 && kill(p, 0) != 0, "a process has the pid of an ended leader");
  __atomic_store_n(&board->stop, 1, __ATOMIC_RELEASE);
  for (double give_up = e2e_now() + 10; e2e_now() < give_up;) {
    if (board->slot[kB].done && board->slot[kC].done && board->slot[kQ].done) {
      e2e_pass();
    }
    e2e_sleep_until(e2e_now() + 0.001);
  }
  e2e_fail("the processes did not end");
}
