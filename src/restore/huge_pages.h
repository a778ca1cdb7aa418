// Host side (restore front end). Which memory the restorer loads so that the kernel can back it
// with transparent huge pages: where the mapping allows them on the machine restoring it.
#pragma once

#include <cstdint>
#include <string>

namespace vos::restore {

// /sys/kernel/mm/transparent_hugepage/enabled: the mode in brackets.
enum class ThpMode { kAlways, kMadvise, kNever };

// `text` as the kernel shows it ("always [madvise] never"); kMadvise if no mode is marked.
ThpMode parse_thp_mode(const std::string& text);
// This machine's mode (kMadvise if the file cannot be read).
ThpMode current_thp_mode();

// Private anonymous memory [start, end) with the image's advice bits (image::kAdvice*): true if
// the kernel would give it huge pages (MADV_HUGEPAGE under `madvise`, anything but
// MADV_NOHUGEPAGE under `always`) and it holds a whole aligned 2 MiB block.
bool huge_pages_allowed(ThpMode mode, uint32_t advice, uint64_t start, uint64_t end);

}  // namespace vos::restore
