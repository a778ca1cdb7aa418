// Host side (restore). System V semaphore sets and message queues: created again under their
// ids, with their values and messages, in the program's new, empty IPC namespace, by its first
// process before the program runs (like the segments, sysv_shm_restore.h).
#pragma once

#include "base/result.h"
#include "image/process_model.h"

namespace vos::restore {

// Refuses, before anything is created, what the restore could not rebuild (a corrupt image, a
// kernel without the next-id files).
Status check_sysv_sem_msg_restorable(const image::ProcessImage& p, const std::string& path);

// In the new process: every set and queue of `p`, each made with its key under its id as its
// creator, filled (SETALL, msgsnd of every message in order), then given its owner, mode and
// queue limit.
Status recreate_sysv_sem_msg(const image::ProcessImage& p);

}  // namespace vos::restore
