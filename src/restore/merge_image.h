// Host side (CLI). `vos merge`: an incremental image made standalone.
#pragma once

#include <string>

#include "base/result.h"

namespace vos::restore {

struct MergeStats {
  uint64_t pages = 0;         // pages in the new image
  uint64_t pages_copied = 0;  // of those, taken from parent images
  size_t parents = 0;         // parent images no longer needed
  uint64_t bytes = 0;
};

// Writes `out`: the image `in` with every page it takes from parent images copied in. The result
// gets a new image id: its page offsets differ, so images built on `in` cannot use it instead.
Result<MergeStats> merge_image(const std::string& in, const std::string& out);

}  // namespace vos::restore
