// Host side (restore front end). The pages of lazily restored memory that the restorer must read
// before the program runs, and the page runs split around them, so that only those pages are
// read and the rest of their runs (a heap merged into the same mapping may be gigabytes) stays
// lazy.
#pragma once

#include <cstdint>
#include <vector>

#include "abi/restore_abi.h"
#include "image/process_model.h"

namespace vos::restore {

struct PageSpan {
  uint64_t start = 0, end = 0;  // page aligned
  bool operator==(const PageSpan&) const = default;
};

// The pages holding each thread's rseq area (rseq_len bytes at rseq_addr, at least the 32 of
// the original ABI; it may straddle a page boundary). The kernel writes that area on the way back
// to user space right after the restorer registers it, long before anything serves the lazy
// userfaultfd (the keeper takes it once every thread is parked). Sorted, touching spans merged.
std::vector<PageSpan> eager_pages(const image::ProcessImage& p);

// Appends `run` to `out` in pieces that each lie wholly inside or wholly outside `eager` (sorted,
// disjoint), those inside flagged abi::kRunEager; each piece's image_offset advances with its
// vaddr.
void split_at_eager_pages(const abi::BlobPageRun& run, const std::vector<PageSpan>& eager,
                          std::vector<abi::BlobPageRun>& out);

// Adds to runs[first, end) (one area's runs, sorted by address) a run without data (fd -1,
// kRunEager: a zero page for the restorer) for each part of `eager` inside [start, end) that no
// run covers, and keeps them sorted: vos stores no all-zero page, and an rseq area on one (a
// program's own, on CPU 0) must be present all the same.
void add_unstored_eager_pages(uint64_t start, uint64_t end, const std::vector<PageSpan>& eager,
                              std::vector<abi::BlobPageRun>& runs, size_t first);

}  // namespace vos::restore
