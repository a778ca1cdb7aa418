// Host side (restore front end). Prepares the restorer's chunk-by-chunk check of page data: for
// every chunk of every image it reads from, the checksum to expect and the pieces of private
// anonymous memory whose pages lie in that chunk, so the restorer copies them right after it
// checked the chunk, while the chunk is still in cache.
#pragma once

#include <cstdint>
#include <vector>

#include "abi/restore_abi.h"
#include "base/result.h"
#include "image/page_checksums.h"

namespace vos::restore {

// One image the page runs read from (the image, or a parent), by the fd the runs name.
struct CheckedSource {
  int fd = -1;
  uint64_t pages_offset = 0;  // absolute offset of its pages section
  uint64_t pages_size = 0;
  const image::PageChecksums* sums = nullptr;
};

struct PageChecksPlan {
  std::vector<abi::BlobPageCheck> checks;  // `sums` left 0: the caller places the arrays
  std::vector<abi::BlobCopyPiece> pieces;  // in chunk order
  std::vector<uint32_t> piece_start;       // per chunk of all checks, plus one past the end
  uint64_t nchunks = 0;
};

// Fails on a run that reads outside its source's pages section.
Result<PageChecksPlan> plan_page_checks(const std::vector<CheckedSource>& sources,
                                        const std::vector<abi::BlobArea>& areas,
                                        const std::vector<abi::BlobPageRun>& runs);

}  // namespace vos::restore
