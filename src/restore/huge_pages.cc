// Host side (restore front end).
#include "restore/huge_pages.h"

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

bool huge_pages_allowed(ThpMode mode, uint32_t advice, uint64_t start, uint64_t end) {
  constexpr uint64_t kHuge = 2ull << 20;
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

}  // namespace vos::restore
