// Host side (keeper). Write tracking for a restored program whose image was taken with
// --incremental: armed before the program first runs, so that its next incremental image can
// build on the image it was restored from instead of starting a new chain.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/result.h"
#include "capture/write_tracker.h"
#include "image/process_model.h"

namespace vos::restore {

// Needs every thread parked (ptrace-stopped) and a `syscall` instruction at `syscall_insn` that
// the main thread `pid` can execute. Private anonymous areas the kernel cannot track are left
// untracked; the next image stores them in full, and `untracked` says why (the first failure).
Result<capture::WriteTracker> track_restored_writes(pid_t pid, uint64_t syscall_insn,
                                                    const image::ProcessImage& img,
                                                    std::string* untracked);

}  // namespace vos::restore
