// Host side (keeper). Stops every process of a program's pid namespace at one moment: each is
// frozen (all of its threads) and the namespace is listed again until a pass finds nothing new.
// A frozen process cannot fork any more, so the listing converges, and a child forked just before
// its parent stopped is found by the next pass: none escapes, none is caught half-made (the
// kernel shows a child in /proc only once fork has made it).
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>

#include "base/result.h"
#include "capture/ptrace_session.h"

namespace vos::capture {

struct TreeProcessStat {
  char state = '?';  // /proc/PID/stat field 3: 'Z' for a zombie
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  int exit_code = 0;        // field 52: a zombie's wait status
  uint64_t start_time = 0;  // field 22: tells a process from a later one with its pid
  std::string comm;
};
Result<TreeProcessStat> read_tree_stat(pid_t pid);

// The processes of the caller's pid namespace (its /proc), but `not_program` (vos's own).
Result<std::set<pid_t>> namespace_processes(const std::set<pid_t>& not_program);

struct FrozenTree {
  std::map<pid_t, PtraceSession> live;  // frozen, by pid
  std::map<pid_t, TreeProcessStat> zombies;
};

// Freezes every process of the namespace but `not_program`. A child made with vfork that has not
// exec'd yet is left to run until it has (its parent cannot stop before that, and the child
// frozen would keep it waiting forever), then frozen with the rest.
Result<FrozenTree> freeze_tree(const std::set<pid_t>& not_program);

}  // namespace vos::capture
