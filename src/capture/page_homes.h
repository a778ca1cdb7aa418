// Host side (keeper). Where each page of the last image lives: runs of pages in the pages section
// of one image of an incremental chain. Incremental checkpoints inherit unwritten pages from
// these homes; a pre-copy round moves the homes of the pages it copies to the new image.
#pragma once

#include <cstdint>
#include <vector>

#include "capture/page_ranges.h"

namespace vos::capture {

struct PageHome {
  uint64_t vaddr = 0;
  uint64_t npages = 0;
  uint64_t offset = 0;  // in the pages section of images[image]
  uint32_t image = 0;
};

// `homes` (sorted by vaddr, disjoint) without the pages of `gone` (their content is newer than
// these copies), plus `fresh` (disjoint from what is left); sorted by vaddr.
std::vector<PageHome> replace_homes(const std::vector<PageHome>& homes, const PageRanges& gone,
                                    std::vector<PageHome> fresh);
// `homes` after the program moved [from, from + len) to `to` (mremap): the source's pages keep
// their data at their new addresses; homes at the destination before are gone.
std::vector<PageHome> move_homes(const std::vector<PageHome>& homes, uint64_t from, uint64_t to,
                                 uint64_t len);

}  // namespace vos::capture
