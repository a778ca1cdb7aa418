// Host side (keeper). A copy-on-write copy of a frozen process's memory, for a live checkpoint
// without pre-copy: a clone of its main thread without CLONE_VM, seized from birth, that never
// runs a single instruction. Its pages are read while the program runs on.
//
// Whose child it is matters, since the program must never learn of it:
//   - a process whose parent is vos (the keeper, or init) makes it a child of that parent
//     (CLONE_PARENT; the kernel then gives it the process's own exit signal), which reaps it;
//   - any other process makes it its own child with no exit signal: no SIGCHLD, and neither
//     wait() nor waitpid(-1) sees it (only __WALL or __WCLONE would). Once it has ended it is a
//     zombie there, which the process is made to collect (reap_in).
// (A child of the process's parent through CLONE_PARENT would be an ordinary child of a program
// process: its SIGCHLD and its pid from wait() would reach the program.)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <utility>

#include "base/result.h"
#include "capture/ptrace_session.h"

namespace vos::capture {

class Snapshot {
 public:
  // `session` holds the process frozen; `syscall_insn` is a syscall instruction in it.
  // `own_child`: the second kind above.
  static Result<Snapshot> take(PtraceSession& session, uint64_t syscall_insn, bool own_child);

  Snapshot() = default;
  Snapshot(Snapshot&& o) noexcept : child_(std::exchange(o.child_, 0)) {}
  Snapshot& operator=(Snapshot&&) = delete;
  // Kills the copy and waits for it as its tracer (which reaps it when the tracer is its parent).
  ~Snapshot();
  pid_t pid() const { return child_; }

 private:
  pid_t child_ = 0;
};

// Once `child` (an own-child snapshot of `process`, ended and waited for by its tracer) is a
// zombie of `process`: freezes it for a moment and has it collect the zombie (wait4 on that pid
// only, through the syscall instruction at `syscall_insn`), so that nothing of the checkpoint is
// left in the program. A process that ended meanwhile left it to init, which reaps it.
Status reap_in(pid_t process, pid_t child, uint64_t syscall_insn);

}  // namespace vos::capture
