// Host side (keeper). Checkpoint of a process tree: every process of the program's namespace is
// frozen at one moment (tree_freeze.h), each is captured as a single process is, the objects
// they share are found by identity, and one image holds them all (the first process at the top,
// the others in its `processes`).
#pragma once

#include <sys/types.h>

#include <map>
#include <set>

#include "capture/checkpoint.h"

namespace vos::capture {

// `first`: the program's first process (its image is the top one) if it still runs, else 0.
// `not_program`: the namespace's processes that are vos's (init, the keeper, its helpers).
// `bases`: what each process's next image builds on (the keeper keeps it between checkpoints):
// with --incremental, or once a checkpoint was, each process's written pages stay tracked and
// its image stores only those, inheriting the rest from the images before.
Result<CheckpointStats> checkpoint_tree(pid_t first, const std::set<pid_t>& not_program,
                                        const CheckpointOptions& opts,
                                        std::map<pid_t, CheckpointBase>& bases);

}  // namespace vos::capture
