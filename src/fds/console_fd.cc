// Host side. A descriptor on the program's vos pty (fds 0-2 of a program started from a
// terminal, /dev/pts/N opened again, a copy kept by a daemon): the terminal itself is the
// keeper's (console/console.h) and its state is ProcessImage::console; the descriptor is
// reopened on the restored program's new pty.
#include <fcntl.h>
#include <unistd.h>

#include "fds/fd_kind.h"

namespace vos::fds {

namespace {

class ConsoleFd final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kConsole; }
  bool matches(const FdProbe& f, const ProbeSet& all) const override {
    return all.console_rdev != 0 && f.type() == S_IFCHR && f.st.st_rdev == all.console_rdev;
  }
  Status capture(const FdProbe&, const ProbeSet&, CaptureSink&, image::FdState&) const override {
    return {};
  }
  Result<int> recreate(FdRecreate& r, const image::FdState& f) const override {
    if (r.policy.console_path.empty()) {
      return user_error("fd {}: the image has a terminal of vos and this restore made none", f.fd);
    }
    // O_NOCTTY: which session has it as its terminal is the restore's choice (TIOCSCTTY).
    int flags = (f.flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_NOCTTY | O_CLOEXEC;
    int fd = ::open(r.policy.console_path.c_str(), flags);
    if (fd < 0) {
      return sys_error("fd {}: opening the program's terminal {}", f.fd, r.policy.console_path);
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& console_kind() {
  static const ConsoleFd k;
  return k;
}

}  // namespace vos::fds
