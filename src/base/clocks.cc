// Host side.
#include "base/clocks.h"

#include <fstream>
#include <sstream>
#include <string>

namespace vos {

TimeOffsets time_offsets(pid_t pid) {
  TimeOffsets o;
  std::ifstream in(pid == 0 ? std::string("/proc/self/timens_offsets")
                            : "/proc/" + std::to_string(pid) + "/timens_offsets");
  std::string clock;
  int64_t sec = 0, nsec = 0;
  while (in >> clock >> sec >> nsec) {
    int64_t v = sec * 1000000000ll + nsec;
    if (clock == "monotonic" || clock == "1") {
      o.monotonic_ns = v;
    } else if (clock == "boottime" || clock == "7") {
      o.boottime_ns = v;
    }
  }
  return o;
}

int64_t host_clock_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  int64_t now = ts.tv_sec * 1000000000ll + ts.tv_nsec;
  TimeOffsets self = time_offsets(0);
  return now - (clock == CLOCK_BOOTTIME ? self.boottime_ns : self.monotonic_ns);
}

}  // namespace vos
