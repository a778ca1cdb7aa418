// Host side (keeper, the tracer of the restored process). Recreates the program's POSIX timers
// inside it at its last stop, when every thread exists and every signal is still blocked.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "base/result.h"
#include "image/process_model.h"

namespace vos::restore {

// Needs every thread parked (ptrace-stopped), a `syscall` instruction at `syscall_insn` that the
// main thread `pid` can execute and `scratch`, kPosixTimerScratch bytes of writable memory of the
// process that the program does not use (the blob region). Each timer gets its id back, then is
// armed so that it expires when its clock reads what it would have read (see docs/design.md).
Status restore_posix_timers(pid_t pid, uint64_t syscall_insn, uint64_t scratch,
                            const image::ProcessImage& img);

inline constexpr uint64_t kPosixTimerScratch = 4096;

}  // namespace vos::restore
