// Host side. The program's terminal state on the terminal `vos restore` reconnects it to: the
// mode it had set (a full-screen program's raw mode, no echo), its process group in the
// foreground if it was, and a SIGWINCH if the new terminal's size differs from the old one's,
// so that it redraws for the size it now has. (The terminal's size itself is the terminal's.)
#pragma once

#include "restore/restore.h"

namespace vos::restore {

// In the new process, once its fds are in place and before it changes process group (while it
// is still in vos restore's group, which is the terminal's foreground one when run in a shell).
Status restore_terminal_modes(const LoadedImage& img);
// In the new process, once it is in its own process group again.
Status restore_terminal_foreground(const image::ProcessImage& p);
// In the keeper, on its own stdio (vos restore's): whether the program's terminal now has
// another size than at the checkpoint.
bool terminal_size_changed(const image::ProcessImage& p);

// The program's vos pty (image::ConsoleState), reopened at `path`. In the session leader that
// had it as its controlling terminal, right after setsid (its children inherit it):
Status take_console(const image::ConsoleState& c, const std::string& path);
// Once every process group of the tree exists, in the foreground group's leader (or in the
// session leader): that group in the foreground again (a group that is gone stays in the
// background: nothing to fail for).
void set_console_foreground(const image::ConsoleState& c, const std::string& path);

}  // namespace vos::restore
