// Host side.
#include "capture/page_ranges.h"

#include <algorithm>

namespace vos::capture {

void append_range(PageRanges& out, uint64_t start, uint64_t end) {
  if (start >= end) {
    return;
  }
  if (!out.empty() && out.back().end == start) {
    out.back().end = end;
  } else {
    out.push_back({start, end});
  }
}

PageRanges subtract_ranges(const PageRanges& from, const PageRanges& minus) {
  PageRanges out;
  size_t j = 0;
  for (const auto& r : from) {
    uint64_t at = r.start;
    while (j < minus.size() && minus[j].end <= at) {
      ++j;
    }
    for (size_t k = j; k < minus.size() && minus[k].start < r.end; ++k) {
      if (minus[k].start > at) {
        append_range(out, at, minus[k].start);
      }
      at = std::max(at, minus[k].end);
    }
    if (at < r.end) {
      append_range(out, at, r.end);
    }
  }
  return out;
}

PageRanges intersect_ranges(const PageRanges& a, const PageRanges& b) {
  PageRanges out;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    uint64_t lo = std::max(a[i].start, b[j].start);
    uint64_t hi = std::min(a[i].end, b[j].end);
    append_range(out, lo, hi);
    if (a[i].end < b[j].end) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

PageRanges union_ranges(const PageRanges& a, const PageRanges& b) {
  PageRanges out;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    const PageRange& next =
        (j == b.size() || (i < a.size() && a[i].start <= b[j].start)) ? a[i++] : b[j++];
    if (!out.empty() && next.start <= out.back().end) {
      out.back().end = std::max(out.back().end, next.end);
    } else {
      out.push_back(next);
    }
  }
  return out;
}

uint64_t range_bytes(const PageRanges& r) {
  uint64_t n = 0;
  for (const auto& x : r) {
    n += x.end - x.start;
  }
  return n;
}

PageRanges move_ranges(const PageRanges& ranges, uint64_t from, uint64_t to, uint64_t len) {
  PageRanges source{{from, from + len}}, destination{{to, to + len}};
  PageRanges moved;
  for (const auto& r : intersect_ranges(ranges, source)) {
    moved.push_back({r.start - from + to, r.end - from + to});
  }
  return union_ranges(subtract_ranges(subtract_ranges(ranges, source), destination), moved);
}

}  // namespace vos::capture
