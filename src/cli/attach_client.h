// Host side (CLI). A terminal attached to a program's vos pty: the keys typed go to the
// program, what it writes comes back, the window's size follows. Ctrl-\ then d detaches
// (Ctrl-\ twice sends one Ctrl-\ to the program).
#pragma once

#include <string>

#include "base/result.h"

namespace vos::cli {

inline constexpr char kDetachPrefix = 0x1c;  // Ctrl-backslash
inline constexpr char kDetachKey = 'd';

struct AttachOptions {
  std::string name;
  std::string socket;   // the keeper's control socket (default: NAME's in this run directory)
  bool shared = false;  // watch along with the terminal attached now instead of taking over
  bool redraw = true;   // vos run's own terminal needs no redraw: it has seen everything
  // vos run / vos restore in the foreground stand in for the first process: they end with it.
  bool end_with_first = false;
  int hangup_fd = -1;  // read end: readable once the caller wants to stop relaying (or -1)
};

enum class AttachEnd {
  kDetached,    // by the detach key, or the terminal went away
  kFirstEnded,  // the program's first process ended (end_with_first)
  kAllEnded,    // the program ended
  kTakenOver,   // another vos attach took the program's terminal
  kKeeperGone,  // the keeper died: the program runs on, its terminal not served
  kStopped,     // hangup_fd
};

Result<AttachEnd> attach_terminal(const AttachOptions& opts);

// What a terminal should show once it is given back to the shell (modes a program set off).
void say_detached(const std::string& name, AttachEnd how);

}  // namespace vos::cli
