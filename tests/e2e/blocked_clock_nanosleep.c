// e2e case (runs under vos): two threads are inside clock_nanosleep(CLOCK_MONOTONIC) when the
// checkpoint is taken, one relative (with rem) and one TIMER_ABSTIME. Both must return 0 (no
// EINTR); the relative one after at least its duration and less than a second more, the absolute
// one at or after its deadline and less than a second past it.
#define _GNU_SOURCE  // before any libc header
#include "e2e_common.h"

static int rel_ret = -1, abs_ret = -1;
static double rel_elapsed, abs_deadline, abs_woke;

static void* relative_sleeper(void* arg) {
  (void)arg;
  struct timespec req = {2, 0}, rem = {0, 0};
  double start = e2e_now();
  rel_ret = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);  // returns the error, no errno
  rel_elapsed = e2e_now() - start;
  return NULL;
}

static void* absolute_sleeper(void* arg) {
  (void)arg;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  struct timespec deadline = {now.tv_sec + 2, now.tv_nsec + 200000000L};
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  abs_deadline = (double)deadline.tv_sec + (double)deadline.tv_nsec / 1e9;
  abs_ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
  abs_woke = e2e_now();
  return NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  pthread_t rel, abs;
  pthread_create(&rel, NULL, relative_sleeper, NULL);
  pthread_create(&abs, NULL, absolute_sleeper, NULL);
  usleep(50000);  // both sleepers are inside their calls before ready
  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    e2e_interrupt_thread(abs);
  }
  pthread_join(rel, NULL);
  pthread_join(abs, NULL);

  E2E_CHECK(rel_ret == 0, "relative clock_nanosleep returned %s", strerror(rel_ret));
  E2E_CHECK(abs_ret == 0, "TIMER_ABSTIME clock_nanosleep returned %s", strerror(abs_ret));
  E2E_CHECK(rel_elapsed >= 2.0 && rel_elapsed < 3.0, "relative 2 s sleep took %.3f s", rel_elapsed);
  E2E_CHECK(abs_woke >= abs_deadline && abs_woke < abs_deadline + 1.0,
            "TIMER_ABSTIME sleep woke %.3f s after its deadline", abs_woke - abs_deadline);
  e2e_pass();
}
