// e2e case (runs under vos): three threads are inside nanosleep() when the checkpoint is taken:
// one with a rem pointer, one with NULL rem, one through usleep(). Each call must return 0 (no
// EINTR) after at least the requested time and less than a second more (the sleep keeps its
// deadline instead of starting over or ending early).
#define _GNU_SOURCE  // before any libc header
#include "e2e_common.h"

struct Sleeper {
  const char* what;
  double seconds;
  int kind;  // 0: nanosleep with rem, 1: nanosleep with NULL rem, 2: usleep
  int ret;
  int err;
  double elapsed;
  pthread_t thread;
};

static void* sleeper(void* arg) {
  struct Sleeper* s = arg;
  struct timespec req = e2e_ts(s->seconds), rem = {0, 0};
  double start = e2e_now();
  if (s->kind == 0) {
    s->ret = nanosleep(&req, &rem);
  } else if (s->kind == 1) {
    s->ret = nanosleep(&req, NULL);
  } else {
    s->ret = usleep((useconds_t)(s->seconds * 1e6));
  }
  s->err = errno;
  s->elapsed = e2e_now() - start;
  return NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  struct Sleeper s[] = {
      {.what = "nanosleep(rem)", .seconds = 2.0, .kind = 0},
      {.what = "nanosleep(NULL)", .seconds = 2.2, .kind = 1},
      {.what = "usleep", .seconds = 1.8, .kind = 2},
  };
  enum { kCount = sizeof s / sizeof s[0] };
  for (int i = 0; i < kCount; i++) {
    pthread_create(&s[i].thread, NULL, sleeper, &s[i]);
  }
  usleep(50000);  // the sleepers are inside their calls before ready
  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    e2e_interrupt_thread(s[0].thread);
  }
  for (int i = 0; i < kCount; i++) {
    pthread_join(s[i].thread, NULL);
  }
  for (int i = 0; i < kCount; i++) {
    E2E_CHECK(s[i].ret == 0, "%s returned %d (%s)", s[i].what, s[i].ret, strerror(s[i].err));
    E2E_CHECK(s[i].elapsed >= s[i].seconds && s[i].elapsed < s[i].seconds + 0.3,
              "%s(%.1f s) took %.3f s", s[i].what, s[i].seconds, s[i].elapsed);
  }
  e2e_pass();
}
