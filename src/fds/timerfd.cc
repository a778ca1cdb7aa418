// Host side. timerfd: clock, interval, time to the next expiry and expirations not yet read.
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "abi/kernel_uapi.h"
#include "fds/anon_inode.h"

namespace vos::fds {

namespace {

std::pair<int64_t, int64_t> parse_pair(const std::string& s) {
  long long a = 0, b = 0;
  std::sscanf(s.c_str(), "(%lld, %lld)", &a, &b);
  return {a, b};
}

class Timerfd final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kTimerfd; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    return anon_inode_name(f) == "timerfd";
  }
  Status capture(const FdProbe& f, const ProbeSet&, CaptureSink&,
                 image::FdState& out) const override {
    out.clockid = static_cast<int32_t>(std::strtol(f.info.get("clockid").c_str(), nullptr, 10));
    out.count = std::strtoull(f.info.get("ticks").c_str(), nullptr, 10);
    auto [vs, vns] = parse_pair(f.info.get("it_value"));
    auto [is, ins] = parse_pair(f.info.get("it_interval"));
    out.value_ns = vs * 1000000000ll + vns;
    out.interval_ns = is * 1000000000ll + ins;
    return {};
  }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    int fd = ::timerfd_create(f.clockid, TFD_CLOEXEC);
    if (fd < 0) {
      return sys_error("timerfd_create");
    }
    // An expired periodic timer reads as value 0 until its expirations are read; the kernel
    // then moves it on by whole intervals.
    int64_t value_ns = f.value_ns != 0 ? f.value_ns : f.interval_ns;
    if (value_ns != 0) {
      itimerspec its{};
      its.it_value = {value_ns / 1000000000, value_ns % 1000000000};
      its.it_interval = {f.interval_ns / 1000000000, f.interval_ns % 1000000000};
      if (::timerfd_settime(fd, 0, &its, nullptr) != 0) {
        ::close(fd);
        return sys_error("timerfd_settime");
      }
    }
    if (f.count != 0) {
      uint64_t ticks = f.count;
      if (::ioctl(fd, uapi::kTimerfdIocSetTicks, &ticks) != 0) {
        ::close(fd);
        return sys_error("restoring {} timerfd expirations", ticks);
      }
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& timerfd_kind() {
  static const Timerfd k;
  return k;
}

}  // namespace vos::fds
