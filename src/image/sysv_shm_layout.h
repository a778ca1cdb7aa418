// Host side. How the System V shared memory of an image is laid out: which mappings make up one
// shmat, and what of it the program had unmapped. Capture checks an image can be rebuilt with
// it; restore builds the blob's attachments from it.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "base/result.h"
#include "image/process_model.h"

namespace vos::image {

// One shmat of the program: the segment mapped whole from `base`, as its mappings of kind
// kSysvShm with the same segment and `start - file_offset` say.
struct ShmAttachment {
  int32_t id = -1;
  uint64_t base = 0;
  uint64_t end = 0;  // base + the segment's size in whole pages
  bool rdonly = false;
};

// Every attachment of the image, by base address. Fails on mappings that name no segment of the
// image, lie outside their segment, leave their attachment without its first page, or lie inside
// an attachment made after theirs.
Result<std::vector<ShmAttachment>> shm_attachments(const ProcessImage& p);

// The parts of `att` that no mapping of the image covers: the program had unmapped them, and the
// blob unmaps them again after the shmat.
std::vector<std::pair<uint64_t, uint64_t>> shm_holes(const ProcessImage& p,
                                                     const ShmAttachment& att);

}  // namespace vos::image
