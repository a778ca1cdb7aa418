// Host side (keeper). POSIX timers: what /proc/PID/timers lists, completed by timer_gettime and
// timer_getoverrun run inside the stopped program (the kernel answers them only for timers of
// the caller's own process).
#include <dirent.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/clocks.h"
#include "capture/capture_context.h"
#include "capture/posix_timers.h"
#include "capture/proc_files.h"

namespace vos::capture {

namespace {

Result<std::vector<image::PosixTimer>> read_timers(pid_t pid) {
  auto text = read_text_file(fmt::format("/proc/{}/timers", pid));
  if (!text) {
    return std::move(text).error();
  }
  return parse_posix_timers(*text);
}

// `clock` as the program reads it: the wall clock is the same everywhere; CLOCK_MONOTONIC and
// CLOCK_BOOTTIME go through host time, since both vos and the program may be in time namespaces.
int64_t program_clock_ns(clockid_t clock, const TimeOffsets& self, const TimeOffsets& prog) {
  if (clock == CLOCK_REALTIME_ALARM) {
    clock = CLOCK_REALTIME;
  } else if (clock == CLOCK_BOOTTIME_ALARM) {
    clock = CLOCK_BOOTTIME;
  }
  timespec ts{};
  ::clock_gettime(clock, &ts);
  int64_t now = ts.tv_sec * 1000000000ll + ts.tv_nsec;
  if (clock == CLOCK_MONOTONIC) {
    return now - self.monotonic_ns + prog.monotonic_ns;
  }
  if (clock == CLOCK_BOOTTIME) {
    return now - self.boottime_ns + prog.boottime_ns;
  }
  return now;
}

// A queued signal of timer `t`: the kernel's own siginfo for it (SI_TIMER, its id).
bool is_signal_of(const siginfo_t& si, const image::PosixTimer& t) {
  return si.si_code == SI_TIMER && si.si_signo == t.signo && si.si_timerid == t.id;
}

// Whether the timer's signal is queued now: on its thread's queue for SIGEV_THREAD_ID, on the
// process's otherwise. Read with ptrace from the stopped thread, which takes no injected call.
Result<bool> signal_queued(pid_t pid, const image::PosixTimer& t) {
  constexpr int kBatch = 32;
  bool shared = (t.notify & SIGEV_THREAD_ID) == 0;
  pid_t tid = shared ? pid : t.tid;
  for (int start = 0;; start += kBatch) {
    __ptrace_peeksiginfo_args args{};
    args.off = static_cast<uint64_t>(start);
    args.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    args.nr = kBatch;
    siginfo_t infos[kBatch];
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid, &args, infos);
    if (n < 0) {
      return sys_error("reading pending signals of thread {}", tid);
    }
    for (long i = 0; i < n; ++i) {
      if (is_signal_of(infos[i], t)) {
        return true;
      }
    }
    if (n < kBatch) {
      return false;
    }
  }
}

// Takes the timer's queued signal out of the image's pending signals, if capture_threads found
// it there; the restore makes the timer expire again instead (image::PosixTimer::signal_pending).
void take_pending(CaptureContext& ctx, const image::PosixTimer& t) {
  std::vector<image::BlobRef>* queue = &ctx.img.shared_pending;
  if (t.notify & SIGEV_THREAD_ID) {
    for (auto& th : ctx.img.threads) {
      if (th.tid == t.tid) {
        queue = &th.pending;
      }
    }
  }
  for (auto it = queue->begin(); it != queue->end(); ++it) {
    siginfo_t si{};
    std::memcpy(&si, ctx.blobs.data() + it->offset, std::min<size_t>(sizeof si, it->size));
    if (is_signal_of(si, t)) {
      queue->erase(it);
      return;
    }
  }
}

int64_t ns_of(const timespec& ts) {
  return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

}  // namespace

void precheck_posix_timers(pid_t pid, Obstacles& obstacles) {
  auto timers = read_timers(pid);
  if (!timers) {
    obstacles.add(timers.error());
    return;
  }
  if (timers->empty()) {
    return;
  }
  auto tids = list_tasks(pid);
  if (!tids) {
    obstacles.add(tids.error());
    return;
  }
  if (auto st = check_posix_timers(*timers, pid, *tids); !st) {
    obstacles.add(st.error());
  }
}

Status capture_posix_timers(CaptureContext& ctx) {
  pid_t pid = ctx.pid;
  auto timers = read_timers(pid);
  if (!timers) {
    return std::move(timers).error();
  }
  if (timers->empty()) {
    return {};
  }
  std::set<pid_t> tids;
  for (const auto& t : ctx.img.threads) {
    tids.insert(t.tid);
  }
  VOS_TRY(check_posix_timers(*timers, pid, tids), "process {}", pid);
  auto& session = *ctx.session;
  const auto& main_regs = session.threads().front().regs;
  uint64_t scratch = (main_regs.rsp - 128 - 512) & ~15ull;  // where a signal frame would go
  TimeOffsets self = time_offsets(0), prog = time_offsets(pid);
  for (auto& t : *timers) {
    // The timers go on running while the program is stopped. Its state and whether its signal is
    // queued must be of one moment: when its next expiry could have come between the two reads,
    // they are read again (a few times at most, for a timer of microseconds).
    bool queued = false;
    for (int attempt = 0; attempt < 4; ++attempt) {
      int64_t before = is_cpu_clock(t.clockid) ? 0 : program_clock_ns(t.clockid, self, prog);
      auto r = session.remote_syscall(pid, SYS_timer_gettime, t.id, static_cast<long>(scratch));
      if (!r) {
        return std::move(r).error();
      }
      if (*r < 0) {
        return Error(static_cast<int>(-*r), fmt::format("timer_gettime of POSIX timer {}", t.id));
      }
      int64_t after = is_cpu_clock(t.clockid) ? 0 : program_clock_ns(t.clockid, self, prog);
      itimerspec its{};
      VOS_TRY(read_memory(ctx, scratch, &its, sizeof its), "POSIX timer {}", t.id);
      t.value_ns = ns_of(its.it_value);
      t.interval_ns = ns_of(its.it_interval);
      // Late rather than early by the microseconds the call took.
      t.expires_ns = t.value_ns != 0 && !is_cpu_clock(t.clockid) ? after + t.value_ns : 0;
      auto q = t.notify == SIGEV_NONE ? Result<bool>(false) : signal_queued(pid, t);
      if (!q) {
        return std::move(q).error().context(fmt::format("POSIX timer {}", t.id));
      }
      queued = *q;
      if (t.expires_ns == 0 || before + t.value_ns > program_clock_ns(t.clockid, self, prog)) {
        break;
      }
    }
    auto overrun = session.remote_syscall(pid, SYS_timer_getoverrun, t.id);
    if (overrun && *overrun >= 0) {
      t.overrun = static_cast<int32_t>(*overrun);
    }
    // Queued, with a one-shot timer armed again: a signal of an earlier arming, which stays a
    // plain pending signal.
    t.signal_pending = queued && (t.interval_ns != 0 || t.value_ns == 0);
    if (t.signal_pending) {
      take_pending(ctx, t);
    }
    ctx.img.posix_timers.push_back(t);
  }
  return {};
}

}  // namespace vos::capture
