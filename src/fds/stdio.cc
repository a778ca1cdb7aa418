// Host side. What the program shares with whoever started it through fds 0-2 (a terminal, a
// pipe, a socket, or for a detached program its vos log): on restore, the same place of
// `vos restore`'s own stdin, stdout or stderr (a restore with --detach gives it its new log).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "fds/fd_kind.h"
#include "remote/remote_calls.h"

namespace vos::fds {

namespace {

class Stdio final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kStdio; }
  bool matches(const FdProbe& f, const ProbeSet& all) const override {
    mode_t t = f.type();
    if (t == S_IFREG) {
      return all.is_log(f) && all.stdio_index(f) >= 0;
    }
    return (t == S_IFIFO || t == S_IFCHR || t == S_IFSOCK) && all.stdio_index(f) >= 0;
  }
  Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink& sink,
                 image::FdState& out) const override {
    out.stdio = all.stdio_index(f);
    if (f.type() == S_IFCHR) {
      // A terminal's mode (raw for a full-screen program) and size are the program's too: the
      // terminal it is restored on gets them (restore_terminal_modes).
      auto dup = remote::grab_fd(all.pid, f.fd);
      termios t{};
      if (dup && ::tcgetattr(dup->get(), &t) == 0) {
        out.termios = sink.add_blob(&t, sizeof t);
        winsize ws{};
        if (::ioctl(dup->get(), TIOCGWINSZ, &ws) == 0) {
          out.tty_rows = ws.ws_row;
          out.tty_cols = ws.ws_col;
        }
      }
    }
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
