// Host side. Clocks as the host sees them, and as a process in a time namespace sees them.
// Time-namespace offsets are relative to the host's clocks, so every computation goes through
// host time, whatever namespace the caller itself lives in (a keeper of a restored program does).
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstdint>

namespace vos {

struct TimeOffsets {
  int64_t monotonic_ns = 0;
  int64_t boottime_ns = 0;
};

// Offsets of `pid`'s time namespace (0 = the caller); zeros where there is none.
TimeOffsets time_offsets(pid_t pid);
// CLOCK_MONOTONIC or CLOCK_BOOTTIME as the host sees it.
int64_t host_clock_ns(clockid_t clock);

}  // namespace vos
