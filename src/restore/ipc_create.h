// Host side (restore). Creating a System V IPC object (segment, semaphore set, message queue)
// under the id the program knew: the kernel hands out the id written to
// /proc/sys/kernel/{shm,sem,msg}_next_id, and records the caller's effective ids as creator
// (they count as owner in permission checks, and IPC_SET cannot change them afterwards).
#pragma once

#include <sys/types.h>

#include <functional>

#include "base/result.h"

namespace vos::restore {

// Writes `id` to the open next-id file `next_id_fd` (named `next_id_path` in errors), then runs
// `make` (shmget/semget/msgget with IPC_CREAT | IPC_EXCL) with effective ids cuid:cgid on this
// thread only. Its result must be `id`; another id is removed again and refused.
Result<int> create_ipc_object(int next_id_fd, const char* next_id_path, int id, uid_t cuid,
                              gid_t cgid, const std::function<int()>& make,
                              const std::function<void(int)>& remove);

}  // namespace vos::restore
