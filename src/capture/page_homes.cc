// Host side (keeper).
#include "capture/page_homes.h"

#include <algorithm>

namespace vos::capture {

namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

std::vector<PageHome> replace_homes(const std::vector<PageHome>& homes, const PageRanges& gone,
                                    std::vector<PageHome> fresh) {
  std::vector<PageHome> out;
  out.reserve(homes.size() + fresh.size());
  auto g = gone.begin();
  for (const auto& h : homes) {
    uint64_t at = h.vaddr, end = h.vaddr + h.npages * kPage;
    while (g != gone.end() && g->end <= at) {
      ++g;
    }
    auto keep = [&](uint64_t lo, uint64_t hi) {
      if (lo < hi) {
        out.push_back({lo, (hi - lo) / kPage, h.offset + (lo - h.vaddr), h.image});
      }
    };
    for (auto k = g; k != gone.end() && k->start < end; ++k) {
      keep(at, std::min(k->start, end));
      at = std::max(at, k->end);
    }
    keep(at, end);
  }
  out.insert(out.end(), fresh.begin(), fresh.end());
  std::sort(out.begin(), out.end(),
            [](const PageHome& x, const PageHome& y) { return x.vaddr < y.vaddr; });
  return out;
}

std::vector<PageHome> move_homes(const std::vector<PageHome>& homes, uint64_t from, uint64_t to,
                                 uint64_t len) {
  std::vector<PageHome> moved;
  for (const auto& h : homes) {
    uint64_t lo = std::max(h.vaddr, from);
    uint64_t hi = std::min(h.vaddr + h.npages * kPage, from + len);
    if (lo < hi) {
      moved.push_back({lo - from + to, (hi - lo) / kPage, h.offset + (lo - h.vaddr), h.image});
    }
  }
  PageRanges gone = union_ranges({{from, from + len}}, {{to, to + len}});
  return replace_homes(homes, gone, std::move(moved));
}

}  // namespace vos::capture
