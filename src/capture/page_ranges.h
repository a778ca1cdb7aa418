// Host side. Sorted, non-overlapping ranges of page addresses [start, end), and set operations
// on them: how incremental checkpoints decide which pages to store and which to inherit.
#pragma once

#include <cstdint>
#include <vector>

namespace vos::capture {

struct PageRange {
  uint64_t start = 0;
  uint64_t end = 0;
};
using PageRanges = std::vector<PageRange>;

// Appends [start, end), merging with the last range when they touch.
void append_range(PageRanges& out, uint64_t start, uint64_t end);
PageRanges subtract_ranges(const PageRanges& from, const PageRanges& minus);
PageRanges intersect_ranges(const PageRanges& a, const PageRanges& b);
PageRanges union_ranges(const PageRanges& a, const PageRanges& b);
uint64_t range_bytes(const PageRanges& r);
// `ranges` after the program moved [from, from + len) to `to` (mremap): what lay in the source
// is now at the destination, and what lay at the destination before is gone.
PageRanges move_ranges(const PageRanges& ranges, uint64_t from, uint64_t to, uint64_t len);

}  // namespace vos::capture
