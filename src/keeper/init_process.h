// Host side (pid 1 of the program's pid namespace). The namespace's init does nothing but reap:
// it sets the namespace up, starts the keeper, and from then on only waits for children (the
// program, orphans, the keeper) and writes each one's wait status to a pipe for `vos run`/`vos
// restore`. Being that simple is what lets everything else fail safely: the kernel kills a pid
// namespace with its init, so init is the one process whose death ends the program, and all
// the work that can fail (checkpoints, restores, serving memory) happens in the keeper, whose
// death ends only what it was doing.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>

namespace vos::keeper {

// One reaped child, as init writes it to the status pipe (one write each: atomic in a pipe).
struct ReapedChild {
  int32_t pid = 0;  // as the namespace numbers it
  int32_t wait_status = 0;
};

struct InitPlan {
  bool own_session = false;  // setsid first: the program is not on the caller's terminal
  int status_fd = -1;        // write end: ReapedChild records (never blocks init)
  int ready_fd = -1;         // write end: "ERR <message>" if the namespace cannot be set up
  // The master of the program's vos pty, kept open (never read) at fd 4 for as long as the
  // namespace lives: a keeper that dies does not hang the terminal up on the program.
  int console_master = -1;
};

// Runs init in the calling process (the first of a new pid namespace); never returns. `keeper`
// runs in init's first child with the host's /proc open at the given descriptor.
[[noreturn]] void run_init(const InitPlan& plan,
                           const std::function<void(int host_proc_fd)>& keeper);

}  // namespace vos::keeper
