// Host side (restore). System V shared memory: the segments are created again, under their ids,
// by the new process (which already has the program's pid, so it is their creator as before) in
// the program's new, empty IPC namespace, before the blob replaces its address space; the blob
// then attaches each where the program had it (BlobArea kAreaShmAttach and its parts) and marks
// the removed ones with IPC_RMID again once attached.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "image/process_model.h"

namespace vos::restore {

struct LoadedImage;

// One shmat of the program: the segment mapped whole from `base`, as its mappings of kind
// kSysvShm with the same segment and `start - file_offset` say.
struct ShmAttachment {
  int32_t id = -1;
  uint64_t base = 0;
  uint64_t end = 0;  // base + the segment's size in whole pages
  bool rdonly = false;
};

// Every attachment of the image, by base address. Fails on mappings that name no segment of the
// image, lie outside their segment, or leave their attachment without its first page.
Result<std::vector<ShmAttachment>> shm_attachments(const image::ProcessImage& p);

// The parts of `att` that no mapping of the image covers: the program had unmapped them, and the
// blob unmaps them again after the shmat.
std::vector<std::pair<uint64_t, uint64_t>> shm_holes(const image::ProcessImage& p,
                                                     const ShmAttachment& att);

// In the new process, with libc, before the blob: every segment of the image under its id
// (through /proc/sys/kernel/shm_next_id), with its key, size, mode, owner and creator, its pages
// read from `image_fd` (or the parent image's fd) into it once, and SHM_LOCK again.
Status recreate_sysv_shm(const LoadedImage& img, int image_fd, const std::vector<int>& parent_fds);

// Refuses, before anything is created, segments and attachments the restore could not rebuild.
Status check_sysv_shm_restorable(const LoadedImage& img);

}  // namespace vos::restore
