// Unit tests of the page-range set operations incremental checkpoints are decided with: a page
// counted twice is stored twice, a page lost is a page of stale data after restore.
#include "capture/page_ranges.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace vos::capture {
namespace {

constexpr uint64_t P = 4096;

// The ranges as a page bitmap over [0, n pages).
std::vector<bool> bits(const PageRanges& r, size_t n) {
  std::vector<bool> b(n, false);
  for (const auto& x : r) {
    for (uint64_t a = x.start; a < x.end; a += P) {
      b.at(a / P) = true;
    }
  }
  return b;
}

PageRanges from_bits(const std::vector<bool>& b) {
  PageRanges r;
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i]) {
      append_range(r, i * P, (i + 1) * P);
    }
  }
  return r;
}

bool canonical(const PageRanges& r) {
  for (size_t i = 0; i < r.size(); ++i) {
    if (r[i].start >= r[i].end || (i > 0 && r[i - 1].end >= r[i].start)) {
      return false;
    }
  }
  return true;
}

TEST(PageRanges, AppendMergesTouchingAndIgnoresEmpty) {
  PageRanges r;
  append_range(r, 0, P);
  append_range(r, P, 3 * P);
  append_range(r, 5 * P, 5 * P);
  append_range(r, 6 * P, 7 * P);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].start, 0u);
  EXPECT_EQ(r[0].end, 3 * P);
  EXPECT_EQ(r[1].start, 6 * P);
  EXPECT_EQ(range_bytes(r), 4 * P);
}

TEST(PageRanges, SubtractAndIntersectEdgeCases) {
  PageRanges all{{0, 10 * P}};
  EXPECT_TRUE(subtract_ranges(all, all).empty());
  EXPECT_EQ(range_bytes(subtract_ranges(all, {})), 10 * P);
  EXPECT_TRUE(intersect_ranges(all, {}).empty());
  auto holes = subtract_ranges(all, {{0, P}, {4 * P, 5 * P}, {9 * P, 12 * P}});
  ASSERT_EQ(holes.size(), 2u);
  EXPECT_EQ(holes[0].start, P);
  EXPECT_EQ(holes[0].end, 4 * P);
  EXPECT_EQ(holes[1].start, 5 * P);
  EXPECT_EQ(holes[1].end, 9 * P);
}

// Against a bitmap model, on random sets: stored (written) + inherited (area - written) must
// cover the area exactly once.
TEST(PageRanges, MatchBitmapModelOnRandomSets) {
  std::mt19937_64 rng(42);
  constexpr size_t n = 200;
  for (int round = 0; round < 500; ++round) {
    std::vector<bool> a(n), b(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = rng() % 3 != 0;
      b[i] = rng() % 4 == 0;
    }
    PageRanges ra = from_bits(a), rb = from_bits(b);
    auto diff = subtract_ranges(ra, rb);
    auto both = intersect_ranges(ra, rb);
    auto either = union_ranges(ra, rb);
    ASSERT_TRUE(canonical(diff) && canonical(both) && canonical(either));
    auto bd = bits(diff, n), bb = bits(both, n), be = bits(either, n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(bd[i], a[i] && !b[i]) << "page " << i << " round " << round;
      ASSERT_EQ(bb[i], a[i] && b[i]) << "page " << i << " round " << round;
      ASSERT_EQ(be[i], a[i] || b[i]) << "page " << i << " round " << round;
    }
    EXPECT_EQ(range_bytes(diff) + range_bytes(both), range_bytes(ra));
  }
}

TEST(PageRanges, MoveMatchesBitmapModel) {
  std::mt19937_64 rng(5);
  constexpr size_t n = 200;
  for (int round = 0; round < 500; ++round) {
    std::vector<bool> a(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = rng() % 3 != 0;
    }
    size_t len = 1 + rng() % 60, from = rng() % (n - len), to = rng() % (n - len);
    auto out = move_ranges(from_bits(a), from * P, to * P, len * P);
    ASSERT_TRUE(canonical(out));
    auto b = bits(out, n);
    for (size_t i = 0; i < n; ++i) {
      bool want = a[i];
      if (i >= to && i < to + len) {
        want = a[i - to + from];
      } else if (i >= from && i < from + len) {
        want = false;
      }
      ASSERT_EQ(b[i], want) << "page " << i << " round " << round;
    }
  }
}

}  // namespace
}  // namespace vos::capture
