// Shared helpers for the end-to-end case programs (runs inside the program under test).
//
// Protocol with run_case.sh: argv[1] is an empty work directory. The program sets up the state
// under test, calls e2e_ready() (creates <dir>/ready atomically), keeps the state alive while the
// harness checkpoints/kills/restores it, verifies everything and ends with e2e_pass() or
// e2e_fail(), which write <dir>/result ("PASS\n" or "FAIL: <reason>\n") atomically and exit.
//
// A case that finds it could not exercise what it is for (e.g. a race it needs did not happen)
// writes <dir>/untested with the reason; the harness then fails a restore run even on PASS.
// A case that cannot test it on this machine at all (e.g. the kernel gives no huge pages) calls
// e2e_skip() before ready: <dir>/skip says why, and the harness skips the test (exit 77).
//
// E2E_SABOTAGE=1 in the environment asks a case to damage its own state after ready, the way a
// broken restore would; `run_case.sh sabotage` uses it to prove that each case can fail.
#ifndef VOS_TESTS_E2E_COMMON_H
#define VOS_TESTS_E2E_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

static const char* e2e_dir = ".";
static double e2e_ready_time;  // CLOCK_MONOTONIC seconds at e2e_ready()

static inline double e2e_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline struct timespec e2e_ts(double seconds) {
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

// Sleeps until CLOCK_MONOTONIC reaches `deadline`; EINTR (e.g. from an interval timer) is not
// an error here, the helper is only used for pacing, never as the syscall under test.
static inline void e2e_sleep_until(double deadline) {
  struct timespec ts = e2e_ts(deadline);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static inline int e2e_sabotage(void) {
  const char* s = getenv("E2E_SABOTAGE");
  return s != NULL && s[0] != '\0' && s[0] != '0';
}

// Writes <dir>/<name> through <name>.tmp + rename, so the harness never sees a partial file.
static inline void e2e_write_file(const char* name, const char* text) {
  char tmp[4096], dst[4096];
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", e2e_dir, name);
  snprintf(dst, sizeof dst, "%s/%s", e2e_dir, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    perror(tmp);
    _exit(2);
  }
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len || close(fd) != 0 || rename(tmp, dst) != 0) {
    perror(dst);
    _exit(2);
  }
}

static inline void e2e_init(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s WORKDIR [ARGS...]\n", argv[0]);
    exit(2);
  }
  e2e_dir = argv[1];
}

static inline void e2e_ready(void) {
  e2e_ready_time = e2e_now();
  e2e_write_file("ready", "ready\n");
}

// Writes <dir>/skip (then result and ready, which the harness waits for) and exits.
__attribute__((noreturn)) static inline void e2e_skip(const char* why) {
  char text[1024];
  snprintf(text, sizeof text, "%s\n", why);
  e2e_write_file("skip", text);
  e2e_write_file("result", "SKIP\n");
  e2e_ready();
  _exit(0);
}

// Only the first failure is reported, whichever thread finds it; the others block until exit.
static pthread_mutex_t e2e_fail_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noreturn, format(printf, 1, 2))) static inline void e2e_fail(const char* fmt, ...) {
  pthread_mutex_lock(&e2e_fail_lock);
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "FAIL: ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n - 2, fmt, ap);
  va_end(ap);
  strcat(msg, "\n");
  fputs(msg, stderr);
  e2e_write_file("result", msg);
  _exit(1);
}

__attribute__((noreturn)) static inline void e2e_pass(void) {
  pthread_mutex_lock(&e2e_fail_lock);
  e2e_write_file("result", "PASS\n");
  _exit(0);
}

#define E2E_CHECK(cond, ...) \
  do {                       \
    if (!(cond)) {           \
      e2e_fail(__VA_ARGS__); \
    }                        \
  } while (0)

// The children of this process's main thread, as /proc lists them ("pid pid ..."), into `out`;
// says whether there is any. (A live checkpoint's copy of a process is a child of it until vos
// collects it: a case that made no children, or has collected them all, must find none.)
static inline int e2e_children(char* out, size_t n) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
  out[0] = '\0';
  FILE* f = fopen(path, "r");
  if (f == NULL) {
    return 0;
  }
  if (fgets(out, (int)n, f) == NULL) {
    out[0] = '\0';
  }
  fclose(f);
  return out[0] != '\0';
}

// Whether the page at `page` is in memory (mincore).
static inline int e2e_resident(const void* page) {
  unsigned char v = 0;
  E2E_CHECK(mincore((void*)((uintptr_t)page & ~(uintptr_t)4095), 4096, &v) == 0, "mincore: %s",
            strerror(errno));
  return v & 1;
}

// For cases made for `vos restore --lazy`: waits until the page at `page` is missing (the
// program was restored lazily and runs before its memory is all in), for at most 3 s after
// `since` (a direct run goes on then). Says whether it saw the page missing.
static inline int e2e_wait_lazy_restore(const void* page, double since) {
  while (e2e_resident(page)) {
    if (e2e_now() > since + 3) {
      return 0;
    }
    struct timespec ts = e2e_ts(0.001);
    nanosleep(&ts, NULL);
  }
  return 1;
}

// AnonHugePages of this process's mapping that starts at `addr`, in kB (-1 if there is none).
static inline long e2e_huge_kb(const void* addr) {
  FILE* f = fopen("/proc/self/smaps", "r");
  if (f == NULL) {
    e2e_fail("open /proc/self/smaps: %s", strerror(errno));
  }
  char line[512];
  int in = 0;
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long start = 0;
    char dash = 0;
    if (sscanf(line, "%lx%c", &start, &dash) == 2 && dash == '-') {
      in = start == (unsigned long)addr;
    } else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) {
      break;
    }
  }
  fclose(f);
  return kb;
}

// splitmix64 finaliser: the deterministic "work" and memory patterns of every case.
static inline uint64_t e2e_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Sabotage helper for the blocked-syscall cases: a handler installed without SA_RESTART and a
// signal sent to the blocked thread make its syscall fail with EINTR, exactly what a restore that
// does not resume an interrupted call would show the program.
static inline void e2e_noop_handler(int sig) {
  (void)sig;
}

static inline void e2e_interrupt_thread(pthread_t t) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = e2e_noop_handler;
  sigaction(SIGWINCH, &sa, NULL);
  pthread_kill(t, SIGWINCH);
}

#ifdef __cplusplus
}
#endif

#endif  // VOS_TESTS_E2E_COMMON_H
