// Host side. The pseudo-terminal vos gives a program started from a terminal: vos holds the
// master side (the keeper relays it to whichever terminal is attached; init holds a copy, so the
// program never sees a hangup when a keeper dies), the program gets the slave as its controlling
// terminal.
#pragma once

#include <sys/ioctl.h>
#include <sys/types.h>
#include <termios.h>

#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vos::console {

struct Pty {
  UniqueFd master;  // O_NONBLOCK
  std::string slave_path;
};

// A new pty with the given mode and size (either may be null: the kernel's defaults).
Result<Pty> open_pty(const termios* mode, const winsize* size);

// The device number of a pty's slave (what the program's fds on it show in fstat).
Result<dev_t> slave_device(const std::string& slave_path);

}  // namespace vos::console
