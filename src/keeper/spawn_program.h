// Host side (keeper). Starting a new program: exec with
// libvos.so preloaded, only stdin/stdout/stderr passed on, default signal state.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"

namespace vos::keeper {

// Starts argv (searched on PATH) as a child of the caller's parent (init) and returns its pid
// once the exec has succeeded; an exec failure comes back as an error with its errno. With
// own_process_group the program leads a process group of its own, as a shell would start a job;
// with foreground_on_tty a group of its own in the foreground of the terminal among fds 0-2.
Result<pid_t> spawn_program(const std::vector<std::string>& argv, std::vector<std::string> env,
                            bool own_process_group, bool foreground_on_tty = false);

// The caller's environment with libvos.so put first in LD_PRELOAD (warns if it is not found).
// Built by the CLI before it forks the keeper: locating libvos.so reads /proc/self/exe, which in
// the keeper's freshly mounted /proc costs a cold lookup on the path to the program's exec.
std::vector<std::string> program_environment();

}  // namespace vos::keeper
