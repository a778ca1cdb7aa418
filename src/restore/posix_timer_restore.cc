// Host side (keeper).
#include "restore/posix_timer_restore.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include <cstring>

#include "capture/posix_timers.h"
#include "remote/remote_calls.h"

namespace vos::restore {

namespace {

// prctl(PR_TIMER_CREATE_RESTORE_IDS) (Linux 6.15, for checkpoint/restore): while on, timer_create
// takes the id to give from *created_timer_id and fails with EBUSY if it is in use.
constexpr long kPrTimerCreateRestoreIds = 77;
constexpr long kRestoreIdsOff = 0, kRestoreIdsOn = 1;
// Without it the kernel hands out ids in order from 0 in a new process: each id below the next
// wanted one is taken by a placeholder timer, deleted at once. A program that has created and
// deleted more timers than this would make that too slow: refused.
constexpr int32_t kMaxPlaceholders = 1 << 16;

struct KernelSigevent {  // struct sigevent (x86-64)
  uint64_t value;
  int32_t signo;
  int32_t notify;
  int32_t tid;  // _sigev_un._tid
  int32_t pad[11];
};
static_assert(sizeof(KernelSigevent) == 64);

// Where the calls' arguments go in the scratch memory.
constexpr uint64_t kSigeventAt = 0, kIdAt = 64, kSpecAt = 128;

timespec to_timespec(int64_t ns) {
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

class Injector {
 public:
  Injector(pid_t pid, uint64_t insn, uint64_t scratch) : pid_(pid), insn_(insn), at_(scratch) {}

  // The kernel's result, negative errno included; an error only if the call could not be run.
  Result<long> call(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0) {
    return remote::run_syscall_at(pid_, insn_, nr, {a0, a1, a2, a3, 0, 0});
  }
  long addr(uint64_t off) const { return static_cast<long>(at_ + off); }

  Status write(uint64_t off, const void* data, size_t size) {
    iovec local{const_cast<void*>(data), size}, remote{reinterpret_cast<void*>(at_ + off), size};
    if (::process_vm_writev(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(size)) {
      return sys_error("writing the arguments of a call into process {}", pid_);
    }
    return {};
  }
  Status read(uint64_t off, void* data, size_t size) {
    iovec local{data, size}, remote{reinterpret_cast<void*>(at_ + off), size};
    if (::process_vm_readv(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(size)) {
      return sys_error("reading the result of a call in process {}", pid_);
    }
    return {};
  }

 private:
  pid_t pid_;
  uint64_t insn_;
  uint64_t at_;
};

// The failure of an injected call `r` (one that could not run, or the kernel's errno).
Error failed(Result<long>& r, const std::string& what) {
  if (!r) {
    return std::move(r).error().context(what);
  }
  return Error(static_cast<int>(-*r), what);
}

// timer_create with `sev`; the id the kernel gave, or an error.
Result<int32_t> create(Injector& in, int32_t clockid, const KernelSigevent& sev, int32_t want,
                       const std::string& what) {
  VOS_TRY(in.write(kSigeventAt, &sev, sizeof sev), "{}", what);
  VOS_TRY(in.write(kIdAt, &want, sizeof want), "{}", what);
  auto r = in.call(SYS_timer_create, clockid, in.addr(kSigeventAt), in.addr(kIdAt));
  if (!r || *r != 0) {
    return failed(r, what);
  }
  int32_t got = -1;
  VOS_TRY(in.read(kIdAt, &got, sizeof got), "{}", what);
  return got;
}

// Ids below `want` that the kernel would hand out first, taken and given back one by one.
Status skip_ids_to(Injector& in, int32_t& next, int32_t want) {
  if (want - next > kMaxPlaceholders) {
    return user_error(
        "POSIX timer {}: this kernel cannot create a timer with a given id "
        "(PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15), and reaching it would take {} placeholder "
        "timers",
        want, want - next);
  }
  KernelSigevent none{};
  none.notify = SIGEV_NONE;
  for (; next < want; ++next) {
    auto got = create(in, CLOCK_MONOTONIC, none, 0, fmt::format("placeholder timer {}", next));
    if (!got) {
      return std::move(got).error();
    }
    auto r = in.call(SYS_timer_delete, *got);
    if (!r || *r != 0) {
      return failed(r, fmt::format("deleting placeholder timer {}", *got));
    }
    if (*got != next) {
      return user_error(
          "POSIX timers: this kernel gave the new process id {} where {} was due, and cannot "
          "create a timer with a given id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15)",
          *got, next);
    }
  }
  return {};
}

Status create_all(Injector& in, const image::ProcessImage& img, bool by_id) {
  int32_t next = 0;
  for (const auto& t : img.posix_timers) {
    std::string what = fmt::format("recreating POSIX timer {}", t.id);
    if (!by_id) {
      VOS_TRY(skip_ids_to(in, next, t.id), "{}", what);
    }
    KernelSigevent sev{};
    sev.value = t.sigval;
    sev.signo = t.signo;
    sev.notify = t.notify;
    sev.tid = t.tid;
    auto got = create(in, t.clockid, sev, t.id, what);
    if (!got) {
      return std::move(got).error();
    }
    if (*got != t.id) {
      return user_error("{}: the kernel gave it id {}", what, *got);
    }
    next = t.id + 1;
  }
  return {};
}

// When the timer is to expire, in its own clock: at the reading it would have expired at, for the
// clocks whose reading goes on across a restore; after the CPU time it had left, for CPU clocks.
// A timer whose signal was queued expires at once, so that the kernel queues it again: a periodic
// one at its last expiry, from which the kernel counts the overruns and re-arms it once the signal
// is taken, as it would have.
itimerspec arming(const image::PosixTimer& t, int* flags) {
  itimerspec its{};
  its.it_interval = to_timespec(t.interval_ns);
  bool continues = !capture::is_cpu_clock(t.clockid) && t.expires_ns != 0;
  *flags = 0;
  if (t.signal_pending) {
    if (continues && t.interval_ns != 0 && t.expires_ns > t.interval_ns) {
      its.it_value = to_timespec(t.expires_ns - t.interval_ns);
      *flags = TIMER_ABSTIME;
    } else {
      its.it_value = to_timespec(1);
    }
  } else if (continues) {
    its.it_value = to_timespec(t.expires_ns);
    *flags = TIMER_ABSTIME;
  } else {
    its.it_value = to_timespec(t.value_ns);
  }
  return its;
}

Status arm_all(Injector& in, const image::ProcessImage& img) {
  for (const auto& t : img.posix_timers) {
    if (t.value_ns == 0 && !t.signal_pending) {
      continue;  // not armed
    }
    int flags = 0;
    itimerspec its = arming(t, &flags);
    std::string what = fmt::format("arming POSIX timer {}", t.id);
    VOS_TRY(in.write(kSpecAt, &its, sizeof its), "{}", what);
    auto r = in.call(SYS_timer_settime, t.id, flags, in.addr(kSpecAt), 0);
    if (!r || *r != 0) {
      return failed(r, what);
    }
  }
  return {};
}

}  // namespace

Status restore_posix_timers(pid_t pid, uint64_t syscall_insn, uint64_t scratch,
                            const image::ProcessImage& img) {
  if (img.posix_timers.empty()) {
    return {};
  }
  Injector in(pid, syscall_insn, scratch);
  auto on = in.call(SYS_prctl, kPrTimerCreateRestoreIds, kRestoreIdsOn);
  if (!on) {
    return std::move(on).error().context("POSIX timers");
  }
  bool by_id = *on == 0;
  Status created = create_all(in, img, by_id);
  if (by_id) {
    // Left on, the program's own timer_create would take whatever its id variable holds as the
    // id to give.
    auto off = in.call(SYS_prctl, kPrTimerCreateRestoreIds, kRestoreIdsOff);
    if (created && (!off || *off != 0)) {
      return failed(off, "switching off PR_TIMER_CREATE_RESTORE_IDS");
    }
  }
  VOS_TRY(std::move(created), "POSIX timers");
  return arm_all(in, img);
}

}  // namespace vos::restore
