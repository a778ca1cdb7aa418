// Which pages of lazily restored memory the restorer reads before the program runs, and the page
// runs split around them.
#include "restore/eager_pages.h"

#include <gtest/gtest.h>

#include "image/process_model.h"

namespace vos {
namespace {

using abi::BlobPageRun;
using abi::kRunEager;
using restore::add_unstored_eager_pages;
using restore::eager_pages;
using restore::PageSpan;
using restore::split_at_eager_pages;

constexpr uint64_t kPage = 4096;

image::ThreadState thread_with_rseq(uint64_t addr, uint32_t len) {
  image::ThreadState t;
  t.rseq_addr = addr;
  t.rseq_len = len;
  return t;
}

TEST(EagerPages, ThePagesEachRseqAreaCovers) {
  image::ProcessImage p;
  p.threads.push_back(thread_with_rseq(0x7f0000003fe0, 32));  // the end of its page
  p.threads.push_back(thread_with_rseq(0x7f0000010ff0, 32));  // straddles two pages
  p.threads.push_back(thread_with_rseq(0x7f0000020000, 0));   // no length: the 32 of ABI v0
  p.threads.push_back(thread_with_rseq(0, 32));               // not registered
  EXPECT_EQ(eager_pages(p), (std::vector<PageSpan>{{0x7f0000003000, 0x7f0000004000},
                                                   {0x7f0000010000, 0x7f0000012000},
                                                   {0x7f0000020000, 0x7f0000021000}}));
}

TEST(EagerPages, ThreadsSharingPagesGiveThemOnce) {
  image::ProcessImage p;
  p.threads.push_back(thread_with_rseq(0x7f0000005800, 32));
  p.threads.push_back(thread_with_rseq(0x7f0000004020, 32));
  p.threads.push_back(thread_with_rseq(0x7f0000005020, 32));
  p.threads.push_back(thread_with_rseq(0x7f0000006000, 32));  // the next page: merged
  EXPECT_EQ(eager_pages(p), (std::vector<PageSpan>{{0x7f0000004000, 0x7f0000007000}}));
}

std::vector<BlobPageRun> split(const BlobPageRun& run, const std::vector<PageSpan>& eager) {
  std::vector<BlobPageRun> out;
  split_at_eager_pages(run, eager, out);
  return out;
}

void expect_runs(const std::vector<BlobPageRun>& got, const std::vector<BlobPageRun>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].vaddr, want[i].vaddr) << "run " << i;
    EXPECT_EQ(got[i].len, want[i].len) << "run " << i;
    EXPECT_EQ(got[i].image_offset, want[i].image_offset) << "run " << i;
    EXPECT_EQ(got[i].fd, want[i].fd) << "run " << i;
    EXPECT_EQ(got[i].flags, want[i].flags) << "run " << i;
  }
}

TEST(EagerPages, ARunIsSplitAroundItsEagerPagesWithTheirImageOffsets) {
  const uint64_t base = 0x7f0000000000, off = 0x100000;
  BlobPageRun run{base, 1024 * kPage, off, 5, 0};  // 4 MiB, one of them the rseq page
  expect_runs(split(run, {{base + 700 * kPage, base + 701 * kPage}}),
              {{base, 700 * kPage, off, 5, 0},
               {base + 700 * kPage, kPage, off + 700 * kPage, 5, kRunEager},
               {base + 701 * kPage, 323 * kPage, off + 701 * kPage, 5, 0}});
}

TEST(EagerPages, EagerPagesAtTheEdgesOrPartlyOutsideTheRun) {
  const uint64_t base = 0x7f0000100000, off = 0x2000;
  BlobPageRun run{base, 8 * kPage, off, 3, 0};
  // Two pages straddling the run's start, one page at its end, one span elsewhere.
  expect_runs(split(run, {{base - 0x100000, base - 0xff000},
                          {base - kPage, base + kPage},
                          {base + 7 * kPage, base + 8 * kPage}}),
              {{base, kPage, off, 3, kRunEager},
               {base + kPage, 6 * kPage, off + kPage, 3, 0},
               {base + 7 * kPage, kPage, off + 7 * kPage, 3, kRunEager}});
  // All of it, and none of it.
  expect_runs(split(run, {{base - kPage, base + 9 * kPage}}),
              {{base, 8 * kPage, off, 3, kRunEager}});
  expect_runs(split(run, {{base + 8 * kPage, base + 9 * kPage}}), {run});
  expect_runs(split(run, {}), {run});
}

TEST(EagerPages, TwoEagerSpansInOneRun) {
  const uint64_t base = 0x7f0000200000, off = 0;
  BlobPageRun run{base, 10 * kPage, off, 4, 0};
  expect_runs(
      split(run, {{base + 2 * kPage, base + 4 * kPage}, {base + 5 * kPage, base + 6 * kPage}}),
      {{base, 2 * kPage, 0, 4, 0},
       {base + 2 * kPage, 2 * kPage, 2 * kPage, 4, kRunEager},
       {base + 4 * kPage, kPage, 4 * kPage, 4, 0},
       {base + 5 * kPage, kPage, 5 * kPage, 4, kRunEager},
       {base + 6 * kPage, 4 * kPage, 6 * kPage, 4, 0}});
}

TEST(EagerPages, EagerPagesNoRunCoversGetRunsWithoutData) {
  const uint64_t base = 0x7f0000300000;
  // Other runs before the area's own (first = 1); the area is [base, base + 16 pages).
  std::vector<BlobPageRun> runs = {{0x1000, kPage, 0, 3, 0},
                                   {base, 2 * kPage, 0x10000, 3, 0},
                                   {base + 5 * kPage, kPage, 0x12000, 3, kRunEager},
                                   {base + 8 * kPage, 2 * kPage, 0x13000, 3, 0}};
  add_unstored_eager_pages(base, base + 16 * kPage,
                           {{base - kPage, base + 3 * kPage},         // partly before the area
                            {base + 5 * kPage, base + 6 * kPage},     // stored: nothing to add
                            {base + 7 * kPage, base + 9 * kPage},     // half stored
                            {base + 15 * kPage, base + 17 * kPage}},  // partly after the area
                           runs, 1);
  expect_runs(runs, {{0x1000, kPage, 0, 3, 0},
                     {base, 2 * kPage, 0x10000, 3, 0},
                     {base + 2 * kPage, kPage, 0, -1, kRunEager},
                     {base + 5 * kPage, kPage, 0x12000, 3, kRunEager},
                     {base + 7 * kPage, kPage, 0, -1, kRunEager},
                     {base + 8 * kPage, 2 * kPage, 0x13000, 3, 0},
                     {base + 15 * kPage, kPage, 0, -1, kRunEager}});
}

TEST(EagerPages, NoEagerPagesNoNewRuns) {
  std::vector<BlobPageRun> runs = {{0x7f0000000000, kPage, 0, 3, 0}};
  add_unstored_eager_pages(0x7f0000000000, 0x7f0000010000, {}, runs, 0);
  add_unstored_eager_pages(0x7f0000000000, 0x7f0000010000, {{0x7f0000020000, 0x7f0000021000}}, runs,
                           0);
  expect_runs(runs, {{0x7f0000000000, kPage, 0, 3, 0}});
}

}  // namespace
}  // namespace vos
