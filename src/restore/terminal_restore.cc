// Host side (the new process before the blob; the keeper).
#include "restore/terminal_restore.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

namespace vos::restore {

namespace {

// A terminal call from a process outside the terminal's foreground group would stop it with
// SIGTTOU; with SIGTTOU blocked it is done (as a shell does when it hands the terminal over).
class TtouBlocked {
 public:
  TtouBlocked() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTTOU);
    ::sigprocmask(SIG_BLOCK, &s, &old_);
  }
  ~TtouBlocked() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
  TtouBlocked(const TtouBlocked&) = delete;
  TtouBlocked& operator=(const TtouBlocked&) = delete;

 private:
  sigset_t old_{};
};

bool on_terminal(const image::FdState& f) {
  return f.kind == image::FdKind::kStdio && f.termios.size == sizeof(termios) &&
         ::isatty(f.fd) != 0;
}

}  // namespace

Status restore_terminal_modes(const LoadedImage& img) {
  TtouBlocked quiet;
  for (const auto& f : img.proc.fds) {
    if (!on_terminal(f) || f.termios.offset + f.termios.size > img.blobs.size()) {
      continue;
    }
    termios t{};
    std::memcpy(&t, img.blobs.data() + f.termios.offset, sizeof t);
    if (::tcsetattr(f.fd, TCSANOW, &t) != 0) {
      return sys_error("fd {}: setting the terminal's mode as the program had it", f.fd);
    }
  }
  return {};
}

Status restore_terminal_foreground(const image::ProcessImage& p) {
  if (!p.tty_foreground || p.pgid != p.pid) {
    return {};  // not in the foreground, or in vos restore's group, which is
  }
  TtouBlocked quiet;
  for (const auto& f : p.fds) {
    if (on_terminal(f)) {
      if (::tcsetpgrp(f.fd, ::getpgrp()) != 0) {
        return sys_error(
            "fd {}: putting the program's process group in its terminal's "
            "foreground",
            f.fd);
      }
      return {};
    }
  }
  return {};
}

Status take_console(const image::ConsoleState& c, const std::string& path) {
  if (!c.present || c.session != ::getpid()) {
    return {};
  }
  int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    return sys_error("opening the program's terminal {}", path);
  }
  int r = ::ioctl(fd, TIOCSCTTY, 0);
  int err = errno;
  ::close(fd);
  if (r != 0) {
    errno = err;
    return sys_error("making {} the controlling terminal of session {}", path, c.session);
  }
  return {};
}

void set_console_foreground(const image::ConsoleState& c, const std::string& path) {
  // The group's leader, or the session's (what a shell does for its job).
  if (!c.present || c.foreground <= 0 || (c.session != ::getpid() && c.foreground != ::getpid())) {
    return;
  }
  int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    return;
  }
  TtouBlocked quiet;
  (void)::tcsetpgrp(fd, c.foreground);
  ::close(fd);
}

bool terminal_size_changed(const image::ProcessImage& p) {
  for (const auto& f : p.fds) {
    if (f.kind != image::FdKind::kStdio || f.tty_rows == 0 || f.stdio < 0 || f.stdio > 2) {
      continue;
    }
    winsize ws{};
    if (::ioctl(f.stdio, TIOCGWINSZ, &ws) == 0 &&
        (ws.ws_row != f.tty_rows || ws.ws_col != f.tty_cols)) {
      return true;
    }
  }
  return false;
}

}  // namespace vos::restore
