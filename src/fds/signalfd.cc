// Host side. signalfd: the set of signals it reads.
#include <signal.h>
#include <sys/signalfd.h>

#include <cstdlib>
#include <cstring>

#include "fds/anon_inode.h"

namespace vos::fds {

namespace {

class Signalfd final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kSignalfd; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    return anon_inode_name(f) == "signalfd";
  }
  Status capture(const FdProbe& f, const ProbeSet&, CaptureSink&,
                 image::FdState& out) const override {
    out.sigmask = std::strtoull(f.info.get("sigmask").c_str(), nullptr, 16);
    return {};
  }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    sigset_t mask;
    sigemptyset(&mask);
    std::memcpy(&mask, &f.sigmask, sizeof f.sigmask);
    int fd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (fd < 0) {
      return sys_error("signalfd");
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& signalfd_kind() {
  static const Signalfd k;
  return k;
}

}  // namespace vos::fds
