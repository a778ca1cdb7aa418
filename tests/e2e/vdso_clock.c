// e2e case (runs under vos): a tight loop reads the clocks through the vDSO (clock_gettime
// MONOTONIC and REALTIME, gettimeofday, time) from before ready until 2.5 s after, so the
// checkpoint lands inside it. CLOCK_MONOTONIC must never go backwards nor stand still, every call
// must succeed, and every so often the vDSO values must bracket the kernel's own answer from a
// real syscall (a vDSO left pointing at stale or foreign clock data would return frozen or
// shifted time; a program may use either path and must see one clock).
#define _GNU_SOURCE  // before any libc header
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "e2e_common.h"

static int64_t ns(const struct timespec* ts) {
  return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int64_t syscall_clock(clockid_t clk) {
  struct timespec ts;
  E2E_CHECK(syscall(SYS_clock_gettime, clk, &ts) == 0, "clock_gettime syscall: %s",
            strerror(errno));
  return ns(&ts);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  E2E_CHECK(getauxval(AT_SYSINFO_EHDR) != 0, "no vDSO in this process");
  const int64_t kRealtimeSlack = 50000000;  // 50 ms: REALTIME may be slewed, not stepped back
  int64_t prev = 0, end = 0;
  uint64_t calls = 0, same = 0;
  int64_t skew_offset = 0;  // sabotage: pretend an earlier reading was later than it was
  for (uint64_t i = 0;; i++) {
    struct timespec mono, real;
    E2E_CHECK(clock_gettime(CLOCK_MONOTONIC, &mono) == 0, "clock_gettime(MONOTONIC) failed");
    int64_t now = ns(&mono);
    E2E_CHECK(now >= prev, "CLOCK_MONOTONIC went back %lld ns after %llu calls",
              (long long)(prev - now), (unsigned long long)calls);
    // A vDSO reading stale clock data returns one value forever; fail instead of spinning.
    same = now == prev ? same + 1 : 0;
    E2E_CHECK(same < 1000000, "CLOCK_MONOTONIC stuck at %lld ns", (long long)now);
    prev = now + skew_offset;
    calls++;
    E2E_CHECK(clock_gettime(CLOCK_REALTIME, &real) == 0, "clock_gettime(REALTIME) failed");
    if (i % 64 == 0) {
      struct timeval tv;
      E2E_CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday failed");
      time_t t = time(NULL);
      int64_t tv_ns = (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
      E2E_CHECK(tv_ns >= ns(&real) - kRealtimeSlack, "gettimeofday behind CLOCK_REALTIME");
      E2E_CHECK(t >= real.tv_sec - 1 && t <= tv.tv_sec + 1, "time() %lld far from %lld",
                (long long)t, (long long)real.tv_sec);
    }
    if (i % 4096 == 0) {
      // vDSO, syscall, vDSO: the kernel's answer must lie between the two vDSO readings.
      struct timespec a, c;
      clock_gettime(CLOCK_MONOTONIC, &a);
      int64_t b = syscall_clock(CLOCK_MONOTONIC);
      clock_gettime(CLOCK_MONOTONIC, &c);
      E2E_CHECK(ns(&a) <= b && b <= ns(&c), "vDSO MONOTONIC disagrees with the kernel by %lld ns",
                (long long)(b < ns(&a) ? ns(&a) - b : b - ns(&c)));
      prev = ns(&c);
      clock_gettime(CLOCK_REALTIME, &a);
      b = syscall_clock(CLOCK_REALTIME);
      clock_gettime(CLOCK_REALTIME, &c);
      E2E_CHECK(ns(&a) - kRealtimeSlack <= b && b <= ns(&c) + kRealtimeSlack,
                "vDSO REALTIME disagrees with the kernel");
    }
    if (calls == 1000) {
      e2e_ready();
      end = now + 2500000000LL;
    }
    if (e2e_sabotage() && end != 0 && now > end - 1000000000) {
      skew_offset = 1000000;  // as if a restored clock ran 1 ms behind the one before
    }
    if (end != 0 && now >= end) {
      break;
    }
  }
  fprintf(stderr, "vdso_clock: %llu calls\n", (unsigned long long)calls);
  e2e_pass();
}
