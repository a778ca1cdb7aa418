// Host side (keeper). Pre-copy rounds of an incremental checkpoint, as live migration does them:
// while the program runs, the pages written since the base are listed and protected again (one
// PAGEMAP_SCAN), copied into the image being written, and the base is told to find them there.
// The freeze that follows is then a delta against these copies: it stores only what was written
// since the last round, and a page written after its copy is among those, since the round
// protected it before reading it.
#pragma once

#include <sys/types.h>

#include <string>

#include "capture/incremental.h"

namespace vos::capture {

struct PrecopyRound {
  uint64_t pages_copied = 0;     // written pages read in this round
  uint64_t pages_stored = 0;     // of those, the ones stored (all-zero anonymous pages are not)
  uint64_t untracked_bytes = 0;  // areas the tracker no longer covered: copied whole
  uint32_t untracked_areas = 0;
};

// One round into the open pages section of `writer` (the image `image_id` at `path`). Areas the
// tracker does not cover yet (mapped since the base) start being tracked and are copied
// whole. A range the round protected but could not copy is added to `base.must_store`.
Result<PrecopyRound> precopy_written_pages(pid_t pid, CheckpointBase& base,
                                           image::ImageWriter& writer, const std::string& image_id,
                                           const std::string& path);

}  // namespace vos::capture
