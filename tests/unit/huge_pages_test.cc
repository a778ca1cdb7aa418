// Which memory the restorer loads so that the kernel may back it with huge pages.
#include "restore/huge_pages.h"

#include <gtest/gtest.h>

#include "image/process_model.h"

namespace vos {
namespace {

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

}  // namespace
}  // namespace vos
