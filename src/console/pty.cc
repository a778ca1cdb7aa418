// Host side.
#include "console/pty.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

namespace vos::console {

Result<Pty> open_pty(const termios* mode, const winsize* size) {
  Pty p;
  p.master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (!p.master.valid()) {
    return sys_error("opening a pseudo-terminal (/dev/ptmx)");
  }
  if (::grantpt(p.master.get()) != 0 || ::unlockpt(p.master.get()) != 0) {
    return sys_error("unlocking a pseudo-terminal");
  }
  char name[128];
  if (::ptsname_r(p.master.get(), name, sizeof name) != 0) {
    return sys_error("naming a pseudo-terminal's slave");
  }
  p.slave_path = name;
  // (Mode and size are the slave's; set through the master, which needs no session.)
  if (mode != nullptr && ::tcsetattr(p.master.get(), TCSANOW, mode) != 0) {
    return sys_error("setting the mode of {}", p.slave_path);
  }
  if (size != nullptr && size->ws_row > 0 && ::ioctl(p.master.get(), TIOCSWINSZ, size) != 0) {
    return sys_error("setting the size of {}", p.slave_path);
  }
  return p;
}

Result<dev_t> slave_device(const std::string& slave_path) {
  struct stat st {};
  if (::stat(slave_path.c_str(), &st) != 0) {
    return sys_error("stat {}", slave_path);
  }
  return st.st_rdev;
}

}  // namespace vos::console
