// Host side (restore, inspect). The per-chunk checksums of a plain pages section (the
// kPageChecksums section), with which restore checks page data piece by piece.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"
#include "image/image_reader.h"

namespace vos::image {

struct PageChecksums {
  uint64_t chunk_size = 0;
  std::vector<uint64_t> sums;  // sums[i]: XXH3-64 of chunk i of the pages section
};

// nullopt for an image without them (written by an older vos, or with compressed pages). Fails
// if the section is there but does not match the pages section it describes.
Result<std::optional<PageChecksums>> read_page_checksums(const ImageReader& reader);

}  // namespace vos::image
