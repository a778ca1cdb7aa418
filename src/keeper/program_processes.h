// Host side (vos ps). The processes of one managed program, read from the host's /proc: every
// process of the program's pid namespace but vos's own init and keeper. Numbers are given both
// as the host sees them and as the program does.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "keeper/registry.h"

namespace vos::keeper {

struct ProgramProcess {
  pid_t host_pid = 0;
  pid_t pid = 0;        // in the program's namespace
  pid_t ppid = 0;       // in the program's namespace: 1 is vos's init (an orphan's reaper)
  pid_t pgid = 0;       // in the program's namespace; 0 if outside it
  pid_t sid = 0;        // in the program's namespace; 0 if outside it (the caller's session)
  std::string command;  // its command line, or [name] when it has none (a zombie)
};

// By pid as the program sees it. Empty when the namespace cannot be read (another user's
// program, or it ended).
std::vector<ProgramProcess> program_processes(const Entry& e);

}  // namespace vos::keeper
