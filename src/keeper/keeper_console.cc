// Host side (keeper). The program's vos pty as the keeper serves it (console/console.h) and
// keeps it in an image (image::ConsoleState).
#include <stdlib.h>
#include <termios.h>

#include <cstring>

#include "base/hex.h"
#include "console/pty.h"
#include "keeper/keeper_state.h"

namespace vos::keeper {

void Keeper::start_console(const std::string& screen, bool keep_until_attach) {
  if (pipes.console_master < 0) {
    return;
  }
  if (auto rdev = console::slave_device(pipes.console_slave); rdev) {
    console_rdev = *rdev;
  }
  console = std::make_unique<console::Console>(UniqueFd(pipes.console_master), pipes.console_slave,
                                               screen, keep_until_attach);
  pipes.console_master = -1;
}

Result<image::ConsoleState> Keeper::console_state(bool keep_running) {
  auto snap = console->snapshot(keep_running);
  if (!snap) {
    return std::move(snap).error();
  }
  image::ConsoleState c;
  c.present = true;
  c.termios = to_hex({reinterpret_cast<const char*>(&snap->mode), sizeof snap->mode});
  c.rows = static_cast<uint16_t>(snap->rows);
  c.cols = static_cast<uint16_t>(snap->cols);
  c.foreground = snap->foreground;
  c.session = snap->session;
  c.input = to_hex(snap->input);
  c.screen = to_hex(snap->screen);
  return c;
}

Status restore_console_input(int master, const image::ConsoleState& c) {
  std::string mode = from_hex(c.termios);
  termios t{};
  if (mode.size() != sizeof t) {
    return user_error("corrupt image: the terminal's mode is {} bytes", mode.size());
  }
  std::memcpy(&t, mode.data(), sizeof t);
  if (::tcsetattr(master, TCSANOW, &t) != 0) {
    return sys_error("setting the mode of the program's terminal");
  }
  std::string input = from_hex(c.input);
  if (input.empty()) {
    return {};
  }
  char path[128];
  if (::ptsname_r(master, path, sizeof path) != 0) {
    return sys_error("naming the program's terminal");
  }
  return console::put_back_input(master, path, input, t);
}

}  // namespace vos::keeper
