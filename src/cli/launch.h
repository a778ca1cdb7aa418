// Host side (CLI). Starting a keeper (for `vos run` or `vos restore`), registering the program
// and, in the foreground, standing in for it: same stdio, same exit status.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "keeper/keeper.h"
#include "keeper/namespaces.h"
#include "keeper/registry.h"

namespace vos::cli {

struct LaunchOptions {
  std::string name;
  bool detach = false;
  bool json = false;
  keeper::ClockOffsets clocks;
  keeper::Entry entry;  // name, argv, restored_from filled in by the caller
  std::chrono::steady_clock::time_point started;
  const char* verb = "run";  // for messages
  bool own_session = false;  // see KeeperPipes; always when detached
  // vos run: a program started from a terminal gets a pty of vos's (docs/design.md, "The
  // program's terminal") unless this is set; it then shares the caller's terminal as before.
  bool no_pty = false;
  // vos restore: the image's pty, made again (null or not present: the image has none).
  const image::ConsoleState* console = nullptr;
  // Runs in the CLI while the keeper starts the program; the program runs only if it passes.
  std::function<Status()> parallel_check;
  // Runs in the CLI right after the keeper is forked: drops what only the keeper needs (the
  // memfd of decompressed pages would otherwise stay alive as long as the program).
  std::function<void()> after_fork;
};

// `vos run`/`vos restore` in the foreground exit with this when the program was checkpointed
// with --kill (EX_TEMPFAIL: try again, with vos restore), so a script can tell it from an end.
inline constexpr int kExitCheckpointed = 75;

// Starts init in new namespaces and `keeper_body` as its first child; returns the CLI's exit
// code. In the foreground the CLI exits from here with that code once the program has ended.
int launch(const LaunchOptions& opts, const std::function<void(keeper::KeeperPipes)>& keeper_body);

std::string default_name(const std::string& program);

}  // namespace vos::cli
