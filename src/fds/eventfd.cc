// Host side. eventfd: its counter and semaphore mode (fdinfo).
#include <sys/eventfd.h>

#include <cstdlib>

#include "fds/anon_inode.h"

namespace vos::fds {

namespace {

class Eventfd final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kEventfd; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    return anon_inode_name(f) == "eventfd";
  }
  Status capture(const FdProbe& f, const ProbeSet&, CaptureSink&,
                 image::FdState& out) const override {
    out.count = std::strtoull(f.info.get("eventfd-count").c_str(), nullptr, 16);
    out.semaphore = f.info.get("eventfd-semaphore") == "1";
    return {};
  }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    // eventfd() takes an unsigned int; a larger count is written after creation.
    int fd = ::eventfd(0, EFD_CLOEXEC | (f.semaphore ? EFD_SEMAPHORE : 0));
    if (fd < 0) {
      return sys_error("eventfd");
    }
    if (f.count != 0) {
      uint64_t v = f.count;
      if (::write(fd, &v, sizeof v) != sizeof v) {
        ::close(fd);
        return sys_error("eventfd: restoring its counter {}", f.count);
      }
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& eventfd_kind() {
  static const Eventfd k;
  return k;
}

}  // namespace vos::fds
