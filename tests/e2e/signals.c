// e2e case (runs under vos): signal state across a restore. Handlers with SA_SIGINFO, SA_RESTART,
// SA_ONSTACK and sa_mask, an ignored signal, a blocked mask, pending blocked signals (a raise()d
// SIGUSR1, two queued SIGRTMIN+3 with values and a SIGRTMIN+4 with a pointer value; a SIGUSR2
// pending on one thread only), a sigaltstack on that thread and an ITIMER_REAL ticking every
// 10 ms. After the pause: every sigaction, the mask, the pending set, the altstack and the timer
// interval are unchanged, the timer still ticks, and on unblocking each pending signal arrives
// exactly once with its si_code, sender and value (the two SIGRTMIN+3 in the order queued), its
// handler's sa_mask applied, and the SIGUSR2 one on the alternate stack.
#define _GNU_SOURCE  // before any libc header
#include <stdatomic.h>
#include <sys/time.h>

#include "e2e_common.h"

enum { kMaxLog = 16, kAltSize = 64 * 1024 };

struct Delivery {
  int signo, code, value_int;
  void* value_ptr;
  pid_t pid;
  int mask_ok;  // the handler ran with its sa_mask (and itself) blocked
};
static struct Delivery log_[kMaxLog];
static atomic_int log_len;
static atomic_int ticks, usr2_count, usr2_on_altstack;
static stack_t alt_before;

static int rt3, rt4;  // SIGRTMIN+3, SIGRTMIN+4 (runtime values in glibc)

static void on_info(int sig, siginfo_t* si, void* ctx) {
  (void)ctx;
  int i = atomic_fetch_add(&log_len, 1);
  if (i >= kMaxLog) {
    return;
  }
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  int mask_ok = sigismember(&cur, sig) == 1;
  if (sig == SIGUSR1) {
    mask_ok = mask_ok && sigismember(&cur, rt4) == 1;
  } else if (sig == rt3) {
    mask_ok = mask_ok && sigismember(&cur, SIGUSR1) == 1;
  }
  log_[i] = (struct Delivery){.signo = sig,
                              .code = si->si_code,
                              .value_int = si->si_value.sival_int,
                              .value_ptr = si->si_value.sival_ptr,
                              .pid = si->si_pid,
                              .mask_ok = mask_ok};
}

static void on_usr2(int sig) {
  (void)sig;
  char here;
  uintptr_t lo = (uintptr_t)alt_before.ss_sp, hi = lo + alt_before.ss_size;
  atomic_store(&usr2_on_altstack, (uintptr_t)&here >= lo && (uintptr_t)&here < hi);
  atomic_fetch_add(&usr2_count, 1);
}

static void on_alarm(int sig) {
  (void)sig;
  atomic_fetch_add(&ticks, 1);
}

struct Handler {
  int sig;
  struct sigaction act;
  struct sigaction before;
};

static pthread_barrier_t barrier;

static void* ticker(void* arg) {
  (void)arg;
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);  // the only thread that takes SIGALRM
  for (;;) {
    pause();
  }
  return NULL;
}

static void* alt_thread(void* arg) {
  (void)arg;
  stack_t ss = {.ss_sp = malloc(kAltSize), .ss_flags = 0, .ss_size = kAltSize};
  E2E_CHECK(ss.ss_sp != NULL && sigaltstack(&ss, NULL) == 0, "sigaltstack: %s", strerror(errno));
  E2E_CHECK(sigaltstack(NULL, &alt_before) == 0, "sigaltstack query");
  pthread_barrier_wait(&barrier);  // set up; main sends the SIGUSR2 that stays pending here
  pthread_barrier_wait(&barrier);  // after the pause and main's checks
  stack_t after;
  E2E_CHECK(sigaltstack(NULL, &after) == 0, "sigaltstack query after");
  E2E_CHECK(after.ss_sp == alt_before.ss_sp && after.ss_size == alt_before.ss_size &&
                after.ss_flags == alt_before.ss_flags,
            "sigaltstack %p/%zu/%d became %p/%zu/%d", alt_before.ss_sp, alt_before.ss_size,
            alt_before.ss_flags, after.ss_sp, after.ss_size, after.ss_flags);
  sigset_t pending;
  sigpending(&pending);
  E2E_CHECK(sigismember(&pending, SIGUSR2) == 1, "SIGUSR2 no longer pending on its thread");
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);  // delivered here, on the alternate stack
  E2E_CHECK(atomic_load(&usr2_count) == 1, "SIGUSR2 delivered %d times", atomic_load(&usr2_count));
  E2E_CHECK(atomic_load(&usr2_on_altstack), "SIGUSR2 handler did not run on the altstack");
  return NULL;
}

static int same_action(const struct sigaction* a, const struct sigaction* b) {
  if (a->sa_sigaction != b->sa_sigaction || a->sa_flags != b->sa_flags ||
      a->sa_restorer != b->sa_restorer) {
    return 0;
  }
  for (int s = 1; s <= SIGRTMAX; s++) {
    if (sigismember(&a->sa_mask, s) != sigismember(&b->sa_mask, s)) {
      return 0;
    }
  }
  return 1;
}

static int same_set(const sigset_t* a, const sigset_t* b, int* which) {
  for (int s = 1; s <= SIGRTMAX; s++) {
    if (sigismember(a, s) != sigismember(b, s)) {
      *which = s;
      return 0;
    }
  }
  return 1;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  rt3 = SIGRTMIN + 3;
  rt4 = SIGRTMIN + 4;

  struct Handler h[6];
  memset(h, 0, sizeof h);
  h[0].sig = SIGUSR1;
  h[0].act.sa_sigaction = on_info;
  h[0].act.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaddset(&h[0].act.sa_mask, rt4);
  h[1].sig = rt3;
  h[1].act.sa_sigaction = on_info;
  h[1].act.sa_flags = SA_SIGINFO;
  sigaddset(&h[1].act.sa_mask, SIGUSR1);
  h[2].sig = rt4;
  h[2].act.sa_sigaction = on_info;
  h[2].act.sa_flags = SA_SIGINFO | SA_RESTART;
  h[3].sig = SIGUSR2;
  h[3].act.sa_handler = on_usr2;
  h[3].act.sa_flags = SA_ONSTACK | SA_RESTART;
  sigaddset(&h[3].act.sa_mask, SIGHUP);
  h[4].sig = SIGHUP;
  h[4].act.sa_handler = SIG_IGN;
  h[5].sig = SIGALRM;
  h[5].act.sa_handler = on_alarm;
  h[5].act.sa_flags = SA_RESTART;
  enum { kHandlers = sizeof h / sizeof h[0] };
  for (int i = 0; i < kHandlers; i++) {
    E2E_CHECK(sigaction(h[i].sig, &h[i].act, NULL) == 0, "sigaction(%d)", h[i].sig);
  }

  // Blocked everywhere (threads inherit the mask); the ticker unblocks SIGALRM for itself.
  sigset_t blocked;
  sigemptyset(&blocked);
  int to_block[] = {SIGUSR1, SIGUSR2, rt3, rt4, SIGALRM};
  for (size_t i = 0; i < sizeof to_block / sizeof to_block[0]; i++) {
    sigaddset(&blocked, to_block[i]);
  }
  pthread_sigmask(SIG_BLOCK, &blocked, NULL);
  pthread_barrier_init(&barrier, NULL, 2);
  pthread_t tick, alt;
  pthread_create(&tick, NULL, ticker, NULL);
  pthread_create(&alt, NULL, alt_thread, NULL);
  pthread_barrier_wait(&barrier);
  pthread_kill(alt, SIGUSR2);

  // Pending on the main thread / the process.
  raise(SIGUSR1);
  union sigval v = {.sival_int = 0x1234};
  sigqueue(getpid(), rt3, v);
  v.sival_int = 0x5678;
  sigqueue(getpid(), rt3, v);
  void* const kPtr = (void*)0x7f00deadbeefULL;
  v.sival_ptr = kPtr;
  sigqueue(getpid(), rt4, v);

  struct itimerval tv = {{0, 10000}, {0, 10000}};
  E2E_CHECK(setitimer(ITIMER_REAL, &tv, NULL) == 0, "setitimer: %s", strerror(errno));

  for (int i = 0; i < kHandlers; i++) {
    sigaction(h[i].sig, NULL, &h[i].before);
  }
  sigset_t mask_before, pending_before;
  pthread_sigmask(SIG_BLOCK, NULL, &mask_before);
  sigpending(&pending_before);
  sigdelset(&pending_before, SIGALRM);  // may sit pending for a moment until the ticker takes it

  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    v.sival_int = 0x9999;
    sigqueue(getpid(), rt3, v);  // a pending signal duplicated by the restore
  }
  e2e_sleep_until(e2e_ready_time + 1.5);

  for (int i = 0; i < kHandlers; i++) {
    struct sigaction now;
    sigaction(h[i].sig, NULL, &now);
    E2E_CHECK(same_action(&now, &h[i].before), "sigaction of signal %d changed", h[i].sig);
  }
  sigset_t mask_now, pending_now;
  int which = 0;
  pthread_sigmask(SIG_BLOCK, NULL, &mask_now);
  E2E_CHECK(same_set(&mask_now, &mask_before, &which), "blocked mask differs at signal %d", which);
  sigpending(&pending_now);
  sigdelset(&pending_now, SIGALRM);
  E2E_CHECK(same_set(&pending_now, &pending_before, &which), "pending set differs at signal %d",
            which);
  E2E_CHECK(sigismember(&pending_now, SIGUSR1) && sigismember(&pending_now, rt3) &&
                sigismember(&pending_now, rt4),
            "expected pending signals missing");

  struct itimerval cur;
  getitimer(ITIMER_REAL, &cur);
  E2E_CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == 10000,
            "ITIMER_REAL interval is %ld.%06ld s", (long)cur.it_interval.tv_sec,
            (long)cur.it_interval.tv_usec);
  int t1 = atomic_load(&ticks);
  double t1_time = e2e_now();
  e2e_sleep_until(t1_time + 0.5);
  int t2 = atomic_load(&ticks);
  E2E_CHECK(t1 > 0 && t2 - t1 >= 20, "timer ticked %d times in 0.5 s (total %d)", t2 - t1, t2);

  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGUSR1);
  sigaddset(&unblock, rt3);
  sigaddset(&unblock, rt4);
  pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
  // Everything pending here was delivered before pthread_sigmask returned. The kernel may nest
  // the handlers, so only the order among the queued SIGRTMIN+3 values is fixed (FIFO).
  struct Delivery want[] = {
      {SIGUSR1, SI_TKILL, 0, NULL, getpid(), 1},
      {rt3, SI_QUEUE, 0x1234, NULL, getpid(), 1},
      {rt3, SI_QUEUE, 0x5678, NULL, getpid(), 1},
      {rt4, SI_QUEUE, 0, kPtr, getpid(), 1},
  };
  enum { kWant = sizeof want / sizeof want[0] };
  int n = atomic_load(&log_len);
  E2E_CHECK(n == kWant, "%d signals delivered on unblock, want %d", n, kWant);
  int matched[kMaxLog] = {0};
  for (int i = 0; i < kWant; i++) {
    const struct Delivery* w = &want[i];
    int found = -1;
    for (int j = 0; j < n && found < 0; j++) {
      if (!matched[j] && log_[j].signo == w->signo) {
        found = j;  // the first unmatched delivery of this signal
      }
    }
    E2E_CHECK(found >= 0, "signal %d (value %#x) not delivered", w->signo, w->value_int);
    matched[found] = 1;
    const struct Delivery* g = &log_[found];
    E2E_CHECK(g->code == w->code && g->pid == w->pid, "signal %d: si_code %d si_pid %d, want %d %d",
              w->signo, g->code, g->pid, w->code, w->pid);
    E2E_CHECK(w->value_ptr != NULL ? g->value_ptr == w->value_ptr : g->value_int == w->value_int,
              "signal %d: si_value %#x, want %#x", w->signo, g->value_int, w->value_int);
    E2E_CHECK(g->mask_ok, "signal %d: handler ran without its sa_mask", w->signo);
  }
  E2E_CHECK(raise(SIGHUP) == 0, "raise(SIGHUP)");  // ignored: we are still here

  pthread_barrier_wait(&barrier);  // the altstack thread takes its SIGUSR2
  pthread_join(alt, NULL);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  e2e_pass();  // exits the process; the ticker stays in pause()
}
