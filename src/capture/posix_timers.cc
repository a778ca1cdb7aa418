// Host side (keeper).
#include "capture/posix_timers.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace vos::capture {

namespace {

// The kernel's encoding of CPU-time clock ids (include/linux/posix-timers_types.h).
constexpr int32_t kCpuClockPerThread = 4;
constexpr int32_t kCpuClockTypeMask = 3;
constexpr int32_t kCpuClockFd = 3;  // not a CPU clock: a dynamic clock opened from a device fd

pid_t cpu_clock_pid(int32_t clockid) {
  return static_cast<pid_t>(~(clockid >> 3));
}

// "signal/pid.123", "none/pid.123", "thread/pid.123", "signal/tid.124": the kernel prints the
// notification without SIGEV_THREAD_ID, then where the signal goes.
Status parse_notify(const std::string& v, image::PosixTimer& t) {
  auto slash = v.find('/');
  auto dot = v.find('.', slash == std::string::npos ? 0 : slash);
  if (slash == std::string::npos || dot == std::string::npos) {
    return user_error("cannot parse notify: {}", v);
  }
  std::string how = v.substr(0, slash), target = v.substr(slash + 1, dot - slash - 1);
  if (how == "signal") {
    t.notify = SIGEV_SIGNAL;
  } else if (how == "none") {
    t.notify = SIGEV_NONE;
  } else if (how == "thread") {
    t.notify = SIGEV_THREAD;
  } else {
    return user_error("unknown notification {}", how);
  }
  if (target == "tid") {
    t.notify |= SIGEV_THREAD_ID;
    t.tid = static_cast<int32_t>(std::strtol(v.c_str() + dot + 1, nullptr, 10));
  } else if (target != "pid") {
    return user_error("cannot parse notify: {}", v);
  }
  return {};
}

}  // namespace

Result<std::vector<image::PosixTimer>> parse_posix_timers(const std::string& text) {
  std::vector<image::PosixTimer> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    auto colon = line.find(": ");
    if (colon == std::string::npos) {
      return user_error("/proc timers: cannot parse line '{}'", line);
    }
    std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    if (key == "ID") {
      out.emplace_back();
      out.back().id = static_cast<int32_t>(std::strtol(value.c_str(), nullptr, 10));
      continue;
    }
    if (out.empty()) {
      return user_error("/proc timers: '{}' before any ID", line);
    }
    auto& t = out.back();
    if (key == "signal") {
      // "%d/%px": the signal number, then sigev_value as 16 hex digits without 0x.
      auto slash = value.find('/');
      if (slash == std::string::npos) {
        return user_error("/proc timers: cannot parse signal: {}", value);
      }
      t.signo = static_cast<int32_t>(std::strtol(value.c_str(), nullptr, 10));
      t.sigval = std::strtoull(value.c_str() + slash + 1, nullptr, 16);
    } else if (key == "notify") {
      VOS_TRY(parse_notify(value, t), "/proc timers: timer {}", t.id);
    } else if (key == "ClockID") {
      t.clockid = static_cast<int32_t>(std::strtol(value.c_str(), nullptr, 10));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const image::PosixTimer& a, const image::PosixTimer& b) { return a.id < b.id; });
  return out;
}

Status check_posix_timers(const std::vector<image::PosixTimer>& timers, pid_t pid,
                          const std::set<pid_t>& tids) {
  for (const auto& t : timers) {
    if ((t.notify & SIGEV_THREAD_ID) && tids.count(t.tid) == 0) {
      return user_error(
          "POSIX timer {} sends its signal to thread {}, which has ended: not supported", t.id,
          t.tid);
    }
    if (!is_cpu_clock(t.clockid)) {
      continue;
    }
    if ((t.clockid & kCpuClockTypeMask) == kCpuClockFd) {
      return user_error("POSIX timer {} runs on a dynamic clock (a device fd): not supported yet",
                        t.id);
    }
    pid_t of = cpu_clock_pid(t.clockid);
    if ((t.clockid & kCpuClockPerThread) == 0) {
      if (of != 0 && of != pid) {
        return user_error("POSIX timer {} counts the CPU time of process {}: not supported", t.id,
                          of);
      }
    } else if (of == 0 && tids.size() > 1) {
      // CLOCK_THREAD_CPUTIME_ID means the thread that created the timer, which the kernel keeps
      // but does not show. With one thread it can only be that one (or one that has ended,
      // whose timer never expires: restored, it would count the main thread's time instead).
      return user_error(
          "POSIX timer {} counts the CPU time of the thread that created it "
          "(CLOCK_THREAD_CPUTIME_ID), and the kernel does not say which of the {} threads that "
          "is: not supported",
          t.id, tids.size());
    } else if (of != 0 && tids.count(of) == 0) {
      return user_error("POSIX timer {} counts the CPU time of thread {}, not one of process {}",
                        t.id, of, pid);
    }
  }
  return {};
}

}  // namespace vos::capture
