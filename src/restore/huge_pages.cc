// Host side (restore front end).
#include "restore/huge_pages.h"

#include <algorithm>

#include "capture/proc_files.h"
#include "image/process_model.h"

namespace vos::restore {

ThpMode parse_thp_mode(const std::string& text) {
  if (text.find("[always]") != std::string::npos) {
    return ThpMode::kAlways;
  }
  if (text.find("[never]") != std::string::npos) {
    return ThpMode::kNever;
  }
  return ThpMode::kMadvise;
}

ThpMode current_thp_mode() {
  auto text = capture::read_text_file("/sys/kernel/mm/transparent_hugepage/enabled");
  return text ? parse_thp_mode(*text) : ThpMode::kMadvise;
}

ThpMode thp_mode_for(const image::ProcessImage& p) {
  return p.thp_disabled ? ThpMode::kNever : current_thp_mode();
}

namespace {
constexpr uint64_t kHuge = 2ull << 20;
constexpr uint64_t kPage = 4096;
}  // namespace

bool huge_pages_allowed(ThpMode mode, uint32_t advice, uint64_t start, uint64_t end) {
  uint64_t first_block = (start + kHuge - 1) & ~(kHuge - 1);
  if (first_block < start || first_block + kHuge > end) {
    return false;  // no aligned 2 MiB block inside: only 4 KiB pages fit
  }
  switch (mode) {
    case ThpMode::kAlways:
      return (advice & image::kAdviceNoHugePage) == 0;
    case ThpMode::kMadvise:
      return (advice & image::kAdviceHugePage) != 0;
    case ThpMode::kNever:
      return false;
  }
  return false;
}

std::vector<HugeRange> huge_blocks_with_pages(const image::ProcessImage& p, ThpMode mode) {
  std::vector<HugeRange> out;
  for (const auto& a : p.areas) {
    if (a.kind != image::AreaKind::kAnon || a.shared ||
        !huge_pages_allowed(mode, a.advice, a.start, a.end)) {
      continue;
    }
    const uint64_t first = (a.start + kHuge - 1) & ~(kHuge - 1);
    const uint64_t last = a.end & ~(kHuge - 1);  // end of the last whole block
    for (const auto& r : a.pages) {
      uint64_t from = std::max(r.vaddr & ~(kHuge - 1), first);
      uint64_t to = std::min((r.vaddr + r.npages * kPage + kHuge - 1) & ~(kHuge - 1), last);
      if (from >= to) {
        continue;  // the run lies in the area's partial blocks at either end
      }
      if (!out.empty() && out.back().end >= from) {
        out.back().end = std::max(out.back().end, to);
      } else {
        out.push_back({from, to});
      }
    }
  }
  return out;
}

}  // namespace vos::restore
