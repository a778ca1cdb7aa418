// Unit tests of replace_homes, which a pre-copy round uses to move the homes of the pages it
// copied: a page left at its old home after a newer copy was made is stale data after a restore.
#include "capture/page_homes.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace vos::capture {
namespace {

constexpr uint64_t P = 4096;
constexpr uint32_t kNowhere = ~uint32_t{0};

struct Where {
  uint32_t image = 0;
  uint64_t offset = 0;
  bool operator==(const Where& o) const { return image == o.image && offset == o.offset; }
};

// Page index -> where its data is, over [0, n pages).
std::vector<Where> model(const std::vector<PageHome>& homes, size_t n) {
  std::vector<Where> m(n, Where{kNowhere, 0});
  for (const auto& h : homes) {
    for (uint64_t i = 0; i < h.npages; ++i) {
      m.at(h.vaddr / P + i) = {h.image, h.offset + i * P};
    }
  }
  return m;
}

TEST(PageHomes, SplitsRunsAndKeepsOffsets) {
  std::vector<PageHome> homes{{0, 10, 1000 * P, 1}};
  auto out = replace_homes(homes, {{2 * P, 4 * P}, {9 * P, 12 * P}}, {{3 * P, 1, 7 * P, 0}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].vaddr, 0u);
  EXPECT_EQ(out[0].npages, 2u);
  EXPECT_EQ(out[1].vaddr, 3 * P);  // the fresh copy
  EXPECT_EQ(out[1].image, 0u);
  EXPECT_EQ(out[2].vaddr, 4 * P);
  EXPECT_EQ(out[2].npages, 5u);
  EXPECT_EQ(out[2].offset, 1004 * P);
}

// Against a page model, on random homes, gone sets and fresh copies.
// Runs of 1-9 pages over [0, n pages), two in three with a home somewhere in images 0-2.
std::vector<PageHome> random_homes(std::mt19937_64& rng, size_t n) {
  std::vector<PageHome> homes;
  for (size_t i = 0; i < n;) {
    size_t len = 1 + rng() % 9;
    if (rng() % 3 != 0) {
      homes.push_back(
          {i * P, std::min(len, n - i), (rng() % 1000) * P, static_cast<uint32_t>(rng() % 3)});
    }
    i += len;
  }
  return homes;
}

TEST(PageHomes, MatchPageModelOnRandomSets) {
  std::mt19937_64 rng(7);
  constexpr size_t n = 120;
  for (int round = 0; round < 500; ++round) {
    std::vector<PageHome> homes = random_homes(rng, n);
    PageRanges gone;
    std::vector<bool> is_gone(n, false);
    for (size_t i = 0; i < n; ++i) {
      if (rng() % 4 == 0) {
        append_range(gone, i * P, (i + 1) * P);
        is_gone[i] = true;
      }
    }
    std::vector<PageHome> fresh;  // a copy for some gone pages (zero pages get none)
    for (size_t i = 0; i < n; ++i) {
      if (is_gone[i] && rng() % 2 == 0) {
        fresh.push_back({i * P, 1, (5000 + i) * P, 9});
      }
    }
    auto before = model(homes, n);
    auto fresh_model = model(fresh, n);
    auto out = replace_homes(homes, gone, fresh);
    for (size_t i = 1; i < out.size(); ++i) {
      ASSERT_LE(out[i - 1].vaddr + out[i - 1].npages * P, out[i].vaddr) << "round " << round;
    }
    auto after = model(out, n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(after[i], is_gone[i] ? fresh_model[i] : before[i])
          << "page " << i << " round " << round;
    }
  }
}

// mremap moved [from, from + len) to `to` (the ranges may overlap, as a move by less than its
// length does): every page of the source is found at its new address with the same data, the
// destination's old homes are gone, the source keeps nothing, the rest is untouched.
TEST(PageHomes, MoveMatchesPageModel) {
  std::mt19937_64 rng(11);
  constexpr size_t n = 120;
  for (int round = 0; round < 500; ++round) {
    std::vector<PageHome> homes = random_homes(rng, n);
    size_t len = 1 + rng() % 40, from = rng() % (n - len), to = rng() % (n - len);
    auto before = model(homes, n);
    auto out = move_homes(homes, from * P, to * P, len * P);
    for (size_t i = 1; i < out.size(); ++i) {
      ASSERT_LE(out[i - 1].vaddr + out[i - 1].npages * P, out[i].vaddr) << "round " << round;
    }
    auto after = model(out, n);
    for (size_t i = 0; i < n; ++i) {
      Where want = before[i];
      if (i >= to && i < to + len) {
        want = before[i - to + from];
      } else if (i >= from && i < from + len) {
        want = Where{kNowhere, 0};
      }
      ASSERT_EQ(after[i], want) << "page " << i << " round " << round;
    }
  }
}

}  // namespace
}  // namespace vos::capture
