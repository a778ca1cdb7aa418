// Host side (restore front end).
#include "restore/eager_pages.h"

#include <algorithm>
#include <cstddef>

namespace vos::restore {

namespace {
constexpr uint64_t kPage = 4096;
constexpr uint64_t kRseqMinLen = 32;  // struct rseq of the original ABI
}  // namespace

std::vector<PageSpan> eager_pages(const image::ProcessImage& p) {
  std::vector<PageSpan> spans;
  for (const auto& t : p.threads) {
    if (t.rseq_addr == 0) {
      continue;
    }
    uint64_t len = std::max<uint64_t>(t.rseq_len, kRseqMinLen);
    uint64_t start = t.rseq_addr & ~(kPage - 1);
    uint64_t end = (t.rseq_addr + len + kPage - 1) & ~(kPage - 1);
    if (end <= start) {
      continue;  // wraps: no mapping is there, the kernel refused such an area anyway
    }
    spans.push_back({start, end});
  }
  std::sort(spans.begin(), spans.end(),
            [](const PageSpan& a, const PageSpan& b) { return a.start < b.start; });
  std::vector<PageSpan> merged;
  for (const auto& s : spans) {
    if (!merged.empty() && s.start <= merged.back().end) {
      merged.back().end = std::max(merged.back().end, s.end);
    } else {
      merged.push_back(s);
    }
  }
  return merged;
}

void split_at_eager_pages(const abi::BlobPageRun& run, const std::vector<PageSpan>& eager,
                          std::vector<abi::BlobPageRun>& out) {
  const uint64_t run_end = run.vaddr + run.len;
  auto piece = [&](uint64_t from, uint64_t to, uint32_t flags) {
    out.push_back({from, to - from, run.image_offset + (from - run.vaddr), run.fd, flags});
  };
  // The first span that ends inside or after the run.
  auto it = std::upper_bound(eager.begin(), eager.end(), run.vaddr,
                             [](uint64_t v, const PageSpan& s) { return v < s.end; });
  uint64_t at = run.vaddr;
  for (; it != eager.end() && it->start < run_end; ++it) {
    uint64_t lo = std::max(it->start, at);
    uint64_t hi = std::min(it->end, run_end);
    if (lo > at) {
      piece(at, lo, run.flags);
    }
    piece(lo, hi, run.flags | abi::kRunEager);
    at = hi;
  }
  if (at < run_end) {
    piece(at, run_end, run.flags);
  }
}

void add_unstored_eager_pages(uint64_t start, uint64_t end, const std::vector<PageSpan>& eager,
                              std::vector<abi::BlobPageRun>& runs, size_t first) {
  const size_t area_end = runs.size();
  for (const auto& span : eager) {
    uint64_t at = std::max(span.start, start);
    uint64_t hi = std::min(span.end, end);
    for (size_t k = first; k < area_end && at < hi; ++k) {
      const abi::BlobPageRun r = runs[k];  // a copy: push_back below may move the runs
      if (r.vaddr + r.len <= at) {
        continue;
      }
      if (r.vaddr >= hi) {
        break;
      }
      if (r.vaddr > at) {
        runs.push_back({at, r.vaddr - at, 0, -1, abi::kRunEager});
      }
      at = r.vaddr + r.len;
    }
    if (at < hi) {
      runs.push_back({at, hi - at, 0, -1, abi::kRunEager});
    }
  }
  std::sort(runs.begin() + static_cast<ptrdiff_t>(first), runs.end(),
            [](const abi::BlobPageRun& a, const abi::BlobPageRun& b) { return a.vaddr < b.vaddr; });
}

}  // namespace vos::restore
