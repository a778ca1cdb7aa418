// Host side. What the program shares with whoever started it through fds 0-2 (a terminal, a
// pipe, a socket): on restore, the same place of `vos restore`'s own stdin, stdout or stderr.
#include <fcntl.h>

#include "fds/fd_kind.h"

namespace vos::fds {

namespace {

class Stdio final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kStdio; }
  bool matches(const FdProbe& f, const ProbeSet& all) const override {
    mode_t t = f.type();
    return (t == S_IFIFO || t == S_IFCHR || t == S_IFSOCK) && all.stdio_index(f) >= 0;
  }
  Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink&,
                 image::FdState& out) const override {
    out.stdio = all.stdio_index(f);
    return {};
  }
  Result<int> recreate(FdRecreate& r, const image::FdState& f) const override {
    if (f.stdio < 0 || f.stdio > 2) {
      return user_error("fd {}: corrupt image: stdio index {}", f.fd, f.stdio);
    }
    int fd = ::fcntl(r.stdio_copy[f.stdio], F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      return sys_error("fd {}: duplicating vos restore's fd {}", f.fd, f.stdio);
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& stdio_kind() {
  static const Stdio k;
  return k;
}

}  // namespace vos::fds
