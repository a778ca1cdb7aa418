// Host side (restore). System V shared memory: the segments are created again, under their ids,
// by the new process (which already has the program's pid, so it is their creator as before) in
// the program's new, empty IPC namespace, before the blob replaces its address space; the blob
// then attaches each where the program had it (BlobArea kAreaShmAttach and its parts, laid out
// by image/sysv_shm_layout.h) and marks the removed ones with IPC_RMID again once attached.
#pragma once

#include <vector>

#include "base/result.h"
#include "image/process_model.h"

namespace vos::restore {

struct LoadedImage;

// In the new process, with libc, before the blob: every segment of the image under its id
// (through /proc/sys/kernel/shm_next_id), with its key, size, mode, owner and creator, its pages
// read from `image_fd` (or the parent image's fd) into it once, and SHM_LOCK again.
Status recreate_sysv_shm(const LoadedImage& img, int image_fd, const std::vector<int>& parent_fds);

// Refuses, before anything is created, segments and attachments the restore could not rebuild.
Status check_sysv_shm_restorable(const LoadedImage& img);

}  // namespace vos::restore
