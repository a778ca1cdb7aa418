// Inside the program (libvos.so, LD_PRELOADed by vos run). Follows DESIGN.md principle 3: no
// exceptions, no allocation, no state, errno and cancellation behave exactly as libc's own.
//
// Why these wrappers exist: when a checkpoint interrupts a relative sleep, the kernel keeps the
// remaining time in the thread's restart block, which no interface can read; it only writes the
// remaining time to user memory when the caller passed a `rem` pointer. vos re-issues an
// interrupted sleep with that remaining time on restore, so every relative sleep made through
// libc gets a `rem` pointer here. Sleeps with a caller's `rem`, and absolute sleeps, pass through
// untouched.
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "inject/visibility.h"

extern "C" int __nanosleep(const struct timespec* req, struct timespec* rem);  // exported by glibc

namespace {

// glibc exports clock_nanosleep under two versions; the wrapper forwards to the current one.
using ClockNanosleepFn = int (*)(clockid_t, int, const struct timespec*, struct timespec*);
ClockNanosleepFn real_clock_nanosleep = nullptr;

}  // namespace

extern "C" {
void* dlvsym(void* handle, const char* symbol, const char* version);
}
#define VOS_RTLD_NEXT (reinterpret_cast<void*>(-1l))

// Resolved once at load time, before the program's main() and any of its threads: nothing here
// may run later in a signal handler.
__attribute__((constructor)) static void vos_resolve_sleep() {
  real_clock_nanosleep =
      reinterpret_cast<ClockNanosleepFn>(dlvsym(VOS_RTLD_NEXT, "clock_nanosleep", "GLIBC_2.17"));
}

extern "C" VOS_EXPORT int nanosleep(const struct timespec* req, struct timespec* rem) {
  struct timespec own;
  return __nanosleep(req, rem != nullptr ? rem : &own);
}

extern "C" VOS_EXPORT int usleep(useconds_t usec) {
  struct timespec req = {static_cast<time_t>(usec / 1000000),
                         static_cast<long>(usec % 1000000) * 1000};
  struct timespec own;
  return __nanosleep(&req, &own);
}

extern "C" VOS_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec* req,
                                          struct timespec* rem) {
  if (real_clock_nanosleep == nullptr) {
    return ENOSYS;
  }
  struct timespec own;
  bool relative = (flags & TIMER_ABSTIME) == 0;
  return real_clock_nanosleep(clock, flags, req, relative && rem == nullptr ? &own : rem);
}
