// Host side. The keeper is pid 1 of the program's pid namespace: it starts or restores the
// program, reaps it and its orphans, answers `vos checkpoint` on a control socket (it is the
// program's parent, so it may ptrace it under any Yama setting), and reports the program's end to
// the `vos run`/`vos restore` that started it.
#pragma once

#include <string>
#include <vector>

#include "restore/restore.h"

namespace vos::keeper {

// Pipes from the keeper to the CLI that forked it (all write ends, owned by the keeper).
struct KeeperPipes {
  int ready_fd = -1;   // "OK <pid>\n" or "ERR <message>\n" once the program runs
  int status_fd = -1;  // a KeeperStatus when the program has ended
  int ack_fd = -1;     // read end: the CLI closes it once the program is registered
  // The program gets a session of its own (detached, or restored from one that had it);
  // otherwise it stays in the caller's session and process group, on the caller's terminal.
  bool own_session = false;
  int verdict_fd = -1;  // read end: "OK" or "ERR <message>" from a check the CLI runs meanwhile
};

struct KeeperStatus {
  // 0: the program ended; 1: it was checkpointed with --kill; 2: vos ended it (`why`).
  int32_t kind = 0;
  int32_t wait_status = 0;
  char why[512] = {};
};

// env: the program's whole environment (see program_environment()).
[[noreturn]] void keeper_for_new_program(const std::string& name,
                                         const std::vector<std::string>& argv,
                                         std::vector<std::string> env, KeeperPipes pipes);
[[noreturn]] void keeper_for_restore(const std::string& name, restore::LoadedImage& img,
                                     KeeperPipes pipes);

}  // namespace vos::keeper
