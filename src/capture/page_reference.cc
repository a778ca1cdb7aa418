// Host side (keeper).
#include "capture/page_reference.h"

#include <algorithm>
#include <cstring>

namespace vos::capture {

namespace {

constexpr uint64_t kPage = 4096;

bool holds(const PageHome& h, uint64_t vaddr) {
  return vaddr >= h.vaddr && vaddr < h.vaddr + h.npages * kPage;
}

}  // namespace

PageReference::PageReference(std::vector<PageHome> homes, std::vector<Source> sources)
    : homes_(std::move(homes)), sources_(std::move(sources)) {}

const PageHome* PageReference::home_of(uint64_t vaddr) {
  for (size_t i = hint_; i < homes_.size() && i < hint_ + 2; ++i) {
    if (holds(homes_[i], vaddr)) {
      hint_ = i;
      return &homes_[i];
    }
  }
  auto it = std::upper_bound(homes_.begin(), homes_.end(), vaddr,
                             [](uint64_t a, const PageHome& h) { return a < h.vaddr; });
  if (it == homes_.begin() || !holds(*std::prev(it), vaddr)) {
    return nullptr;
  }
  hint_ = static_cast<size_t>(std::prev(it) - homes_.begin());
  return &*std::prev(it);
}

bool PageReference::keep_if_same(uint64_t vaddr, const char* page) {
  const PageHome* h = home_of(vaddr);
  if (h == nullptr || h->image >= sources_.size()) {
    return false;
  }
  const Source& s = sources_[h->image];
  ++compared_total_;
  uint64_t at = s.pages_base + h->offset + (vaddr - h->vaddr);
  if (!s.map.contains(at, kPage) || std::memcmp(s.map.data() + at, page, kPage) != 0) {
    return false;
  }
  uint64_t offset = h->offset + (vaddr - h->vaddr);
  if (!kept_.empty()) {
    PageHome& last = kept_.back();
    if (last.image == h->image && last.vaddr + last.npages * kPage == vaddr &&
        last.offset + last.npages * kPage == offset) {
      ++last.npages;
      ++kept_total_;
      return true;
    }
  }
  kept_.push_back({vaddr, 1, offset, h->image});
  ++kept_total_;
  return true;
}

std::vector<PageHome> PageReference::take_kept() {
  std::vector<PageHome> out = std::move(kept_);
  kept_.clear();
  return out;
}

}  // namespace vos::capture
