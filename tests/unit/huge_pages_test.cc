// Which memory the restorer loads so that the kernel may back it with huge pages.
#include "restore/huge_pages.h"

#include <gtest/gtest.h>

#include "image/process_model.h"

namespace vos {
namespace {

using restore::huge_blocks_with_pages;
using restore::huge_pages_allowed;
using restore::parse_thp_mode;
using restore::ThpMode;

constexpr uint64_t kMiB = 1ull << 20;

TEST(HugePages, ModeIsTheOneInBrackets) {
  EXPECT_EQ(parse_thp_mode("[always] madvise never\n"), ThpMode::kAlways);
  EXPECT_EQ(parse_thp_mode("always [madvise] never\n"), ThpMode::kMadvise);
  EXPECT_EQ(parse_thp_mode("always madvise [never]\n"), ThpMode::kNever);
  EXPECT_EQ(parse_thp_mode(""), ThpMode::kMadvise);
}

TEST(HugePages, AllowedAsTheKernelWouldAllowThem) {
  const uint64_t start = 64 * kMiB, end = 72 * kMiB;
  const uint32_t huge = image::kAdviceHugePage, nohuge = image::kAdviceNoHugePage;
  EXPECT_TRUE(huge_pages_allowed(ThpMode::kAlways, 0, start, end));
  EXPECT_TRUE(huge_pages_allowed(ThpMode::kAlways, huge, start, end));
  EXPECT_FALSE(huge_pages_allowed(ThpMode::kAlways, nohuge, start, end));
  EXPECT_FALSE(huge_pages_allowed(ThpMode::kMadvise, 0, start, end));
  EXPECT_TRUE(huge_pages_allowed(ThpMode::kMadvise, huge, start, end));
  EXPECT_FALSE(huge_pages_allowed(ThpMode::kNever, huge, start, end));
}

TEST(HugePages, OnlyWhereAWholeAlignedBlockFits) {
  const uint32_t huge = image::kAdviceHugePage;
  EXPECT_TRUE(huge_pages_allowed(ThpMode::kMadvise, huge, 2 * kMiB, 4 * kMiB));
  // Longer than 2 MiB but holding no aligned 2 MiB block; and shorter than one.
  EXPECT_FALSE(huge_pages_allowed(ThpMode::kMadvise, huge, 2 * kMiB + 4096, 4 * kMiB + 8192));
  EXPECT_FALSE(huge_pages_allowed(ThpMode::kMadvise, huge, 0, kMiB));
  EXPECT_TRUE(huge_pages_allowed(ThpMode::kMadvise, huge, 2 * kMiB - 4096, 6 * kMiB));
}

image::MemoryArea anon_area(uint64_t start, uint64_t end, uint32_t advice,
                            std::vector<image::PageRun> pages) {
  image::MemoryArea a;
  a.start = start;
  a.end = end;
  a.advice = advice;
  a.pages = std::move(pages);
  return a;
}

TEST(HugePages, BlocksWithPagesAreTheWholeBlocksTheRunsTouch) {
  image::ProcessImage p;
  const uint32_t huge = image::kAdviceHugePage;
  const uint64_t page = 4096;
  p.areas.push_back(anon_area(2 * kMiB - page, 10 * kMiB, huge,
                              {{2 * kMiB - page, 1, 0, 0},  // in the partial block before 2 MiB
                               {3 * kMiB, 2, 0, 0},
                               {4 * kMiB - page, 2, 0, 0},  // across two blocks
                               {9 * kMiB, 1, 0, 0}}));
  p.areas.push_back(anon_area(16 * kMiB, 20 * kMiB, 0, {{16 * kMiB, 8, 0, 0}}));  // no advice
  auto shared = anon_area(20 * kMiB, 24 * kMiB, huge, {{20 * kMiB, 8, 0, 0}});
  shared.shared = true;
  p.areas.push_back(shared);
  p.areas.push_back(anon_area(24 * kMiB, 28 * kMiB, huge, {}));  // nothing stored

  using R = restore::HugeRange;
  EXPECT_EQ(huge_blocks_with_pages(p, ThpMode::kMadvise),
            (std::vector<R>{{2 * kMiB, 6 * kMiB}, {8 * kMiB, 10 * kMiB}}));
  EXPECT_EQ(huge_blocks_with_pages(p, ThpMode::kAlways),
            (std::vector<R>{{2 * kMiB, 6 * kMiB}, {8 * kMiB, 10 * kMiB}, {16 * kMiB, 18 * kMiB}}));
  EXPECT_TRUE(huge_blocks_with_pages(p, ThpMode::kNever).empty());
}

}  // namespace
}  // namespace vos
