// e2e case (runs under vos): POSIX timers (timer_create) across a restore. A periodic
// CLOCK_MONOTONIC SIGEV_SIGNAL timer ticking every 10 ms into a handler that checks si_code,
// si_timerid and si_value; a periodic CLOCK_BOOTTIME SIGEV_THREAD_ID timer aimed at a worker
// thread, which takes it with sigwaitinfo; glibc's SIGEV_THREAD (a helper thread the kernel timer
// is aimed at) calling back every 15 ms; one-shot timers that must still be pending: 60 s on
// CLOCK_REALTIME, 30 s on CLOCK_MONOTONIC, 100 s of process CPU time, 50 s of the worker's CPU
// time (pthread_getcpuclockid); a SIGEV_NONE timer (25 s, then every 2 s) read with
// timer_gettime; two timers whose signals are blocked, so expired and queued at the checkpoint
// (a one-shot and a periodic one); and a deleted timer that leaves a gap in the ids. After the
// pause the ids, signals, values, targets and clocks (/proc/self/timers) are exactly as before,
// the gap is still free, every periodic timer still fires with the right siginfo, each one-shot
// timer has the time left that its clock says it should have (wall time for CLOCK_REALTIME, the
// program's own CLOCK_MONOTONIC for the others, continued through the restore, CPU time for the
// CPU clocks), and each held timer has exactly one signal queued, the periodic one with the
// expirations since counted as overruns, and re-armed once its signal is taken.
#define _GNU_SOURCE  // before any libc header
#include <stdatomic.h>
#include <sys/syscall.h>

#include "e2e_common.h"

enum { kMaxTimers = 16, kMaxText = 4096 };

static int kernel_id(timer_t t) {
  return (int)(intptr_t)t;  // glibc's timer_t is the kernel's id, except for SIGEV_THREAD
}

static double clock_s(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double ts_s(struct timespec ts) {
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tick_id, thread_id, rt_long_id, mono_long_id, gap_id;
static atomic_int ticks, tick_errors, thread_ticks, thread_errors, callbacks, callback_errors;
static atomic_int stray;  // a one-shot long timer that fired
static atomic_int worker_tid;
static int rt_tick, rt_thread, rt_mono_long;  // SIGRTMIN+1, +2, +3
static int rt_held_once, rt_held_periodic;    // SIGRTMIN+4, +5: blocked until the end
static void* const kThreadValue = (void*)0x7f00c0ffee00ULL;
enum { kTickValue = 0x71c4, kCallbackValue = 0x5e7, kLongValue = 0x10f6, kHeldValue = 0x4e1d };

static void on_tick(int sig, siginfo_t* si, void* ctx) {
  (void)sig;
  (void)ctx;
  if (si->si_code != SI_TIMER || si->si_timerid != tick_id ||
      si->si_value.sival_int != kTickValue) {
    atomic_fetch_add(&tick_errors, 1);
  }
  atomic_fetch_add(&ticks, 1 + si->si_overrun);
}

static void on_long(int sig, siginfo_t* si, void* ctx) {
  (void)sig;
  (void)si;
  (void)ctx;
  atomic_fetch_add(&stray, 1);
}

static void on_callback(union sigval v) {
  if (v.sival_int != kCallbackValue) {
    atomic_fetch_add(&callback_errors, 1);
  }
  atomic_fetch_add(&callbacks, 1);
}

static void* worker(void* arg) {
  (void)arg;
  atomic_store(&worker_tid, gettid());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, rt_thread);
  for (;;) {
    siginfo_t si;
    if (sigwaitinfo(&set, &si) != rt_thread) {
      continue;  // EINTR: a ptrace stop
    }
    if (si.si_code != SI_TIMER || si.si_timerid != thread_id ||
        si.si_value.sival_ptr != kThreadValue) {
      atomic_fetch_add(&thread_errors, 1);
    }
    atomic_fetch_add(&thread_ticks, 1 + si.si_overrun);
  }
  return NULL;
}

static timer_t make_timer(clockid_t clock, int notify, int signo, union sigval value, int tid,
                          const char* what) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = notify;
  sev.sigev_signo = signo;
  sev.sigev_value = value;
  sev._sigev_un._tid = tid;
  timer_t t;
  E2E_CHECK(timer_create(clock, &sev, &t) == 0, "timer_create %s: %s", what, strerror(errno));
  return t;
}

static void arm(timer_t t, double value, double interval, int flags, const char* what) {
  struct itimerspec its = {e2e_ts(interval), e2e_ts(value)};
  E2E_CHECK(timer_settime(t, flags, &its, NULL) == 0, "timer_settime %s: %s", what,
            strerror(errno));
}

// /proc/self/timers with its records (4 lines each, newest timer first) sorted by id, so that
// the same timers compare equal whatever order they were created in.
struct Record {
  int id;
  char text[256];
};

static int by_id(const void* a, const void* b) {
  return ((const struct Record*)a)->id - ((const struct Record*)b)->id;
}

static void read_timers(char* out, size_t size) {
  FILE* f = fopen("/proc/self/timers", "r");
  E2E_CHECK(f != NULL, "open /proc/self/timers: %s", strerror(errno));
  struct Record recs[kMaxTimers];
  int n = -1;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    int id;
    if (sscanf(line, "ID: %d", &id) == 1) {
      E2E_CHECK(++n < kMaxTimers, "too many timers");
      recs[n].id = id;
      recs[n].text[0] = '\0';
    }
    E2E_CHECK(n >= 0, "/proc/self/timers starts with %s", line);
    strncat(recs[n].text, line, sizeof recs[n].text - strlen(recs[n].text) - 1);
  }
  fclose(f);
  qsort(recs, (size_t)(n + 1), sizeof recs[0], by_id);
  out[0] = '\0';
  for (int i = 0; i <= n; i++) {
    strncat(out, recs[i].text, size - strlen(out) - 1);
  }
}

static struct itimerspec get(timer_t t, const char* what) {
  struct itimerspec its;
  E2E_CHECK(timer_gettime(t, &its) == 0, "timer_gettime %s: %s", what, strerror(errno));
  return its;
}

// The time left must be what the timer's clock says, within `slack` seconds.
static void check_left(timer_t t, double want, double slack, double interval, const char* what) {
  struct itimerspec its = get(t, what);
  double left = ts_s(its.it_value);
  E2E_CHECK(left > 0 && left >= want - slack && left <= want + slack,
            "%s: %.3f s left, want %.3f (+-%.3f)", what, left, want, slack);
  E2E_CHECK(ts_s(its.it_interval) == interval, "%s: interval %.9f s, want %.9f", what,
            ts_s(its.it_interval), interval);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  rt_tick = SIGRTMIN + 1;
  rt_thread = SIGRTMIN + 2;
  rt_mono_long = SIGRTMIN + 3;
  rt_held_once = SIGRTMIN + 4;
  rt_held_periodic = SIGRTMIN + 5;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sa.sa_sigaction = on_tick;
  sigaction(rt_tick, &sa, NULL);
  sa.sa_sigaction = on_long;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  sigaction(rt_mono_long, &sa, NULL);

  // Every thread started from here blocks everything; the main thread then takes the signals of
  // the process-directed timers (rt_thread stays blocked everywhere: the worker waits for it).
  sigset_t all, mine;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_t w;
  pthread_create(&w, NULL, worker, NULL);
  while (atomic_load(&worker_tid) == 0) {
    usleep(1000);
  }
  clockid_t worker_cpu;
  E2E_CHECK(pthread_getcpuclockid(w, &worker_cpu) == 0, "pthread_getcpuclockid");

  union sigval v = {.sival_int = kTickValue};
  timer_t tick = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, rt_tick, v, 0, "tick");
  v.sival_int = 0;
  timer_t gap = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, v, 0, "gap");
  v.sival_ptr = kThreadValue;
  timer_t thread =
      make_timer(CLOCK_BOOTTIME, SIGEV_THREAD_ID, rt_thread, v, atomic_load(&worker_tid), "thread");
  v.sival_int = kLongValue;
  timer_t rt_long = make_timer(CLOCK_REALTIME, SIGEV_SIGNAL, SIGUSR1, v, 0, "realtime");
  timer_t mono_long = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, rt_mono_long, v, 0, "monotonic");
  timer_t none = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, v, 0, "none");
  timer_t cpu = make_timer(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGUSR2, v, 0, "process cpu");
  timer_t worker_cpu_timer = make_timer(worker_cpu, SIGEV_NONE, 0, v, 0, "worker cpu");
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD;
  sev.sigev_value.sival_int = kCallbackValue;
  sev.sigev_notify_function = on_callback;
  v.sival_int = kHeldValue;
  timer_t held_once = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, rt_held_once, v, 0, "held once");
  timer_t held_periodic =
      make_timer(CLOCK_BOOTTIME, SIGEV_SIGNAL, rt_held_periodic, v, 0, "held periodic");
  timer_t callback;
  E2E_CHECK(timer_create(CLOCK_MONOTONIC, &sev, &callback) == 0, "timer_create SIGEV_THREAD: %s",
            strerror(errno));
  tick_id = kernel_id(tick);
  gap_id = kernel_id(gap);
  thread_id = kernel_id(thread);
  rt_long_id = kernel_id(rt_long);
  mono_long_id = kernel_id(mono_long);
  E2E_CHECK(timer_delete(gap) == 0, "timer_delete: %s", strerror(errno));
  E2E_CHECK(gap_id > tick_id && gap_id < thread_id, "ids %d %d %d leave no gap", tick_id, gap_id,
            thread_id);

  double rt_armed = clock_s(CLOCK_REALTIME), mono_armed = e2e_now();
  arm(rt_long, 60, 0, 0, "realtime");
  arm(mono_long, 30, 0, 0, "monotonic");
  arm(none, 25, 2, 0, "none");
  arm(cpu, 100, 0, 0, "process cpu");
  arm(worker_cpu_timer, 50, 0, 0, "worker cpu");
  arm(tick, 0.01, 0.01, 0, "tick");
  arm(thread, 0.02, 0.02, 0, "thread");
  arm(callback, 0.015, 0.015, 0, "callback");
  // Expired long before the checkpoint, their signals queued and blocked: the kernel keeps one
  // signal per timer, counts further expirations as overruns, and re-arms a periodic timer only
  // once its signal is taken.
  arm(held_once, 0.01, 0, 0, "held once");
  arm(held_periodic, 0.01, 0.05, 0, "held periodic");
  sigemptyset(&mine);
  sigaddset(&mine, rt_tick);
  sigaddset(&mine, rt_mono_long);
  sigaddset(&mine, SIGUSR1);
  sigaddset(&mine, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &mine, NULL);

  static char before[kMaxText], after[kMaxText];
  read_timers(before, sizeof before);

  e2e_ready();
  if (e2e_sabotage()) {
    // A restore that recreates a timer without its id: same timer, another number.
    e2e_sleep_until(e2e_ready_time + 0.5);
    timer_delete(mono_long);
    v.sival_int = kLongValue;
    mono_long = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, rt_mono_long, v, 0, "monotonic");
    arm(mono_long, 30 - (e2e_now() - mono_armed), 0, 0, "monotonic");
  }
  e2e_sleep_until(e2e_ready_time + 1.5);

  read_timers(after, sizeof after);
  if (strcmp(before, after) != 0) {
    size_t diff = 0, record = 0;  // where they first differ, and the record that holds it
    for (; before[diff] == after[diff]; diff++) {
      if (strncmp(before + diff, "ID: ", 4) == 0) {
        record = diff;
      }
    }
    e2e_fail("/proc/self/timers: timer record \"%.60s\" is now \"%.60s\"", before + record,
             after + record);
  }
  struct itimerspec its;
  E2E_CHECK(syscall(SYS_timer_gettime, gap_id, &its) == -1 && errno == EINVAL,
            "the deleted timer's id %d is in use", gap_id);

  // The long timers: the program's CLOCK_MONOTONIC went on through the restore, the wall clock
  // with the time the program was away; the CPU clocks count only CPU time used, which is little.
  check_left(rt_long, rt_armed + 60 - clock_s(CLOCK_REALTIME), 0.05, 0, "realtime");
  check_left(mono_long, mono_armed + 30 - e2e_now(), 0.05, 0, "monotonic");
  check_left(none, mono_armed + 25 - e2e_now(), 0.05, 2, "none");
  check_left(cpu, 99.5, 0.5, 0, "process cpu");
  check_left(worker_cpu_timer, 49.5, 0.5, 0, "worker cpu");

  int t0 = atomic_load(&ticks), th0 = atomic_load(&thread_ticks), c0 = atomic_load(&callbacks);
  e2e_sleep_until(e2e_now() + 0.5);
  int t1 = atomic_load(&ticks), th1 = atomic_load(&thread_ticks), c1 = atomic_load(&callbacks);
  // Expirations a busy machine makes late are counted in si_overrun, so these hold under load.
  E2E_CHECK(t0 > 0 && t1 - t0 >= 40, "tick timer: %d expirations in 0.5 s (%d before)", t1 - t0,
            t0);
  E2E_CHECK(th0 > 0 && th1 - th0 >= 20, "thread timer: %d expirations in 0.5 s (%d before)",
            th1 - th0, th0);
  E2E_CHECK(c0 > 0 && c1 - c0 >= 5, "SIGEV_THREAD timer: %d callbacks in 0.5 s (%d before)",
            c1 - c0, c0);
  E2E_CHECK(atomic_load(&tick_errors) == 0, "%d tick signals with a wrong siginfo",
            atomic_load(&tick_errors));
  E2E_CHECK(atomic_load(&thread_errors) == 0, "%d thread timer signals with a wrong siginfo",
            atomic_load(&thread_errors));
  E2E_CHECK(atomic_load(&callback_errors) == 0, "%d callbacks with a wrong value",
            atomic_load(&callback_errors));
  E2E_CHECK(atomic_load(&stray) == 0, "a long timer fired");

  // The held signals: still queued, once each; the periodic timer goes on once its signal is
  // taken.
  sigset_t pending;
  sigpending(&pending);
  E2E_CHECK(sigismember(&pending, rt_held_once) && sigismember(&pending, rt_held_periodic),
            "a held timer signal is no longer pending");
  struct timespec zero = {0, 0}, wait = {0, 100000000};
  sigset_t held;
  sigemptyset(&held);
  sigaddset(&held, rt_held_once);
  sigaddset(&held, rt_held_periodic);
  int once = 0, periodic = 0, overrun = 0;
  siginfo_t si;
  int sig;
  // The tick handler may interrupt a wait of this thread (EINTR) at any time.
  while ((sig = sigtimedwait(&held, &si, &zero)) > 0 || errno == EINTR) {
    if (sig < 0) {
      continue;
    }
    timer_t want = sig == rt_held_once ? held_once : held_periodic;
    E2E_CHECK(si.si_code == SI_TIMER && si.si_timerid == kernel_id(want) &&
                  si.si_value.sival_int == kHeldValue,
              "held signal %d: si_code %d, timer %d, value %#x", sig, si.si_code, si.si_timerid,
              si.si_value.sival_int);
    if (sig == rt_held_once) {
      once++;
    } else {
      periodic++;
      overrun = si.si_overrun;
    }
  }
  E2E_CHECK(once == 1 && periodic == 1, "held timers: %d and %d signals queued, want 1 each", once,
            periodic);
  E2E_CHECK(overrun >= 5, "held periodic timer: overrun %d after a second and more", overrun);
  E2E_CHECK(ts_s(get(held_once, "held once").it_value) == 0, "the held one-shot timer is armed");
  sigdelset(&held, rt_held_once);
  double until = e2e_now() + 1;
  while ((sig = sigtimedwait(&held, &si, &wait)) < 0 && errno == EINTR && e2e_now() < until) {
  }
  E2E_CHECK(sig == rt_held_periodic, "held periodic timer: no expiry once its signal was taken");
  e2e_pass();
}
