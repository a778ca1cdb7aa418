// Host side. epoll sets: the watched descriptors with their events and data (fdinfo "tfd:"
// lines), added again once every other descriptor is back at its number.
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>

#include "fds/anon_inode.h"

namespace vos::fds {

namespace {

class Epoll final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kEpoll; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    return anon_inode_name(f) == "eventpoll";
  }
  Status capture(const FdProbe& f, const ProbeSet&, CaptureSink&,
                 image::FdState& out) const override {
    for (const auto& line : f.info.lines) {
      int tfd = 0;
      unsigned events = 0;
      unsigned long long data = 0;
      if (std::sscanf(line.c_str(), "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3) {
        out.epoll.push_back({tfd, events, data});
      }
    }
    return {};
  }
  int stage() const override { return 1; }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
      return sys_error("epoll_create1");
    }
    for (const auto& t : f.epoll) {
      epoll_event ev{};
      ev.events = t.events;
      ev.data.u64 = t.data;
      if (::epoll_ctl(ep, EPOLL_CTL_ADD, t.fd, &ev) != 0) {
        int e = errno;
        ::close(ep);
        errno = e;
        return sys_error("re-adding fd {} to the epoll set", t.fd);
      }
    }
    return ep;
  }
};

}  // namespace

const FdKindHandler& epoll_kind() {
  static const Epoll k;
  return k;
}

}  // namespace vos::fds
