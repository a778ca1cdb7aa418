// Restorer last stage (no libc): raw x86_64 system calls. Every call returns the kernel's value,
// a negative errno on failure.
#pragma once

#include <stdint.h>

namespace vos::blob {

static inline long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
static inline long sys0(long nr) {
  return sys6(nr, 0, 0, 0, 0, 0, 0);
}
static inline long sys1(long nr, long a) {
  return sys6(nr, a, 0, 0, 0, 0, 0);
}
static inline long sys2(long nr, long a, long b) {
  return sys6(nr, a, b, 0, 0, 0, 0);
}
static inline long sys3(long nr, long a, long b, long c) {
  return sys6(nr, a, b, c, 0, 0, 0);
}
static inline long sys4(long nr, long a, long b, long c, long d) {
  return sys6(nr, a, b, c, d, 0, 0);
}
static inline long sys5(long nr, long a, long b, long c, long d, long e) {
  return sys6(nr, a, b, c, d, e, 0);
}

// x86_64 syscall numbers used by the blob.
enum : long {
  kRead = 0,
  kWrite = 1,
  kClose = 3,
  kMmap = 9,
  kMprotect = 10,
  kMunmap = 11,
  kRtSigaction = 13,
  kRtSigprocmask = 14,
  kIoctl = 16,
  kPread64 = 17,
  kMremap = 25,
  kMadvise = 28,
  kShmat = 30,
  kShmctl = 31,
  kGetitimer = 36,
  kSetitimer = 38,
  kGetpid = 39,
  kExit = 60,
  kPrctl = 157,
  kGettid = 186,
  kSetTidAddress = 218,
  kExitGroup = 231,
  kTgkill = 234,
  kRtSigtimedwait = 128,
  kRtSigqueueinfo = 129,
  kSigaltstack = 131,
  kRtTgsigqueueinfo = 297,
  kDup3 = 292,
  kUserfaultfd = 323,
  kSetRobustList = 273,
  kRseq = 334,
  kClone3 = 435,
};

}  // namespace vos::blob
