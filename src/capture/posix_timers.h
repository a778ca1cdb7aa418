// Host side (keeper). POSIX timers (timer_create) as /proc/PID/timers lists them, and what vos
// can restore of them.
#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "image/process_model.h"

namespace vos::capture {

// Parses /proc/PID/timers into timers with id, signal, value, notification, target and clock
// (the rest is filled in by capture), sorted by id.
Result<std::vector<image::PosixTimer>> parse_posix_timers(const std::string& text);

// Refuses, naming the timer, what could not be recreated as it is: a signal aimed at a thread
// that is gone, a CPU-time clock of another process or of an unknown thread. `tids` are the
// process's threads.
Status check_posix_timers(const std::vector<image::PosixTimer>& timers, pid_t pid,
                          const std::set<pid_t>& tids);

// CPU-time clocks (negative ids) count what the process or thread has used, which starts again
// from about zero in a restored process; the others are clocks whose reading goes on across a
// restore (the wall clock, or the program's CLOCK_MONOTONIC/BOOTTIME through its time namespace).
inline bool is_cpu_clock(int32_t clockid) {
  return clockid < 0;
}

}  // namespace vos::capture
