// Host side (restore front end). Which memory the restorer loads so that the kernel can back it
// with transparent huge pages: where the mapping allows them on the machine restoring it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image/process_model.h"

namespace vos::restore {

// /sys/kernel/mm/transparent_hugepage/enabled: the mode in brackets.
enum class ThpMode { kAlways, kMadvise, kNever };

// `text` as the kernel shows it ("always [madvise] never"); kMadvise if no mode is marked.
ThpMode parse_thp_mode(const std::string& text);
// This machine's mode (kMadvise if the file cannot be read).
ThpMode current_thp_mode();
// The mode that applies to restoring `p` here: kNever for a program that turned huge pages off
// for itself (prctl PR_SET_THP_DISABLE).
ThpMode thp_mode_for(const image::ProcessImage& p);

// Private anonymous memory [start, end) with the image's advice bits (image::kAdvice*): true if
// the kernel would give it huge pages (MADV_HUGEPAGE under `madvise`, anything but
// MADV_NOHUGEPAGE under `always`) and it holds a whole aligned 2 MiB block.
bool huge_pages_allowed(ThpMode mode, uint32_t advice, uint64_t start, uint64_t end);

struct HugeRange {
  uint64_t start = 0, end = 0;
  bool operator==(const HugeRange&) const = default;
};

// The aligned 2 MiB blocks of `p`'s private anonymous memory that huge_pages_allowed() gives
// huge pages and that hold stored pages, adjacent ones merged: what an eager restore fills into
// huge pages, and what a lazy restore, which can only fill 4 KiB pages, collapses afterwards.
std::vector<HugeRange> huge_blocks_with_pages(const image::ProcessImage& p, ThpMode mode);

}  // namespace vos::restore
