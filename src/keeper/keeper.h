// Host side. The keeper serves one program from inside its pid namespace: it starts or restores
// it, answers `vos checkpoint` on a control socket, serves a lazy restore's memory, and tells the
// `vos run`/`vos restore` that started it what became of the program. It is not the namespace's
// init (init_process.h) nor the program's parent: its death fails what it was doing, never the
// program (but during a lazy restore, whose memory it serves: see lazy_watchdog.h).
#pragma once

#include <string>
#include <vector>

#include "keeper/registry.h"
#include "restore/restore.h"

namespace vos::keeper {

// Descriptors from the CLI that forked init (write ends owned by the keeper unless said).
struct KeeperPipes {
  int ready_fd = -1;  // "OK <pid inside> <host pid>\n" or "ERR <message>\n" once the program runs
  int note_fd = -1;   // lines about the program's end for the CLI: see `note`
  // The program gets a session of its own (detached, or restored from one that had it);
  // otherwise it stays in the caller's session and process group, on the caller's terminal.
  bool own_session = false;
  int verdict_fd = -1;    // read end: "OK" or "ERR <message>" from a check the CLI runs meanwhile
  int host_proc_fd = -1;  // the host's /proc (HostView), opened by init
  // The program's vos pty (console/pty.h), when it has one: the master side and the slave's path.
  int console_master = -1;
  std::string console_slave;
  // The registry entry the keeper writes once the program runs (argv, restored_from filled in;
  // the keeper adds the pids): by the keeper, so that a CLI killed meanwhile loses nothing.
  Entry entry;
};

// The lines the keeper writes on KeeperPipes::note_fd. The CLI learns the first process's wait
// status from init; these say what vos did and whether anything of the program is left.
namespace note {
inline constexpr const char* kCheckpointed = "CHECKPOINTED";  // + image path: ended by --kill
inline constexpr const char* kEnded = "ENDED";                // + why: vos had to end it
inline constexpr const char* kLeft = "LEFT";  // + host pids: processes that outlive the first
inline constexpr const char* kDone = "DONE";  // nothing of the program is left; unregistered
}  // namespace note

// env: the program's whole environment (see program_environment()).
[[noreturn]] void keeper_for_new_program(const std::string& name,
                                         const std::vector<std::string>& argv,
                                         std::vector<std::string> env, KeeperPipes pipes);
[[noreturn]] void keeper_for_restore(const std::string& name, restore::LoadedImage& img,
                                     KeeperPipes pipes);

}  // namespace vos::keeper
