// Host side (vos run / vos restore, and the keeper). The program lives in its own pid namespace
// (so its pid and tids can be given back exactly on restore with clone3's set_tid), mount
// namespace (for a /proc that shows those pids), IPC namespace (so that its System V shared
// memory is its own and comes back under the same ids) and, once restored, time namespace (so
// that CLOCK_MONOTONIC continues from where it was instead of jumping).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "base/result.h"

namespace vos::keeper {

struct ClockOffsets {
  bool set = false;
  int64_t monotonic_ns = 0;
  int64_t boottime_ns = 0;
};

// In the CLI process: the next child it forks becomes pid 1 of a new pid namespace, and the CLI
// itself moves to a new IPC namespace that its children inherit. Without root a user namespace
// mapping the caller's own uid/gid comes first (and owns the others).
Status enter_namespaces(const ClockOffsets& clocks);

// In init (pid 1): a private mount namespace with a /proc for the new pid namespace.
Status setup_namespace_mounts();

// Inside the namespace: the next process created in it gets pid `pid` (if it is free), through
// ns_last_pid (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the namespace, which the keeper
// has as root or as the owner of the namespace's user namespace).
Status set_next_pid(pid_t pid);
// The last pid the namespace handed out (ns_last_pid), kept in the image so that a restored
// program's next child gets the pid it would have had.
Result<pid_t> last_pid();

}  // namespace vos::keeper
