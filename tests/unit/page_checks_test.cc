// Unit tests of per-chunk page checksums: the writer records one per chunk however the page data
// arrives, and the restore plan splits page runs so that each piece lies in one checked chunk.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "image/image_writer.h"
#include "image/page_checksums.h"
#include "restore/page_checks_plan.h"

namespace vos {
namespace {

constexpr uint64_t kChunk = abi::kPageChecksumChunk;

TEST(PageChecksums, OneChecksumPerChunkWhateverTheWriteSizes) {
  char tmpl[] = "/tmp/vos-checks-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/a.vos";
  std::string data(2 * kChunk + 3 * 4096, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>(i * 13 + i / 4096);
  }
  {
    auto w = image::ImageWriter::create(path);
    ASSERT_TRUE(w) << w.error().describe();
    ASSERT_TRUE(w->begin_section(abi::SectionType::kPages));
    // Pieces that straddle chunk boundaries, and one whole chunk in a single write.
    size_t cuts[] = {0, 4096, kChunk - 4096, kChunk + 8192, 2 * kChunk + 8192, data.size()};
    for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
      ASSERT_TRUE(w->write(data.data() + cuts[i], cuts[i + 1] - cuts[i]));
    }
    ASSERT_TRUE(w->end_section());
    ASSERT_TRUE(w->commit());
  }
  auto reader = image::ImageReader::open(path);
  ASSERT_TRUE(reader) << reader.error().describe();
  ASSERT_TRUE(reader->verify());
  auto sums = image::read_page_checksums(*reader);
  ASSERT_TRUE(sums) << sums.error().describe();
  ASSERT_TRUE(sums->has_value());
  EXPECT_EQ((*sums)->chunk_size, kChunk);
  ASSERT_EQ((*sums)->sums.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    size_t len = std::min<size_t>(kChunk, data.size() - i * kChunk);
    EXPECT_EQ((*sums)->sums[i], XXH3_64bits(data.data() + i * kChunk, len)) << "chunk " << i;
  }
  std::filesystem::remove_all(tmpl);
}

abi::BlobArea anon_area(uint64_t start, uint64_t end, uint64_t first_run, uint64_t nruns) {
  abi::BlobArea a{};
  a.start = start;
  a.end = end;
  a.first_run = first_run;
  a.nruns = nruns;
  a.flags = abi::kAreaMapAnon;
  a.fd = -1;
  return a;
}

TEST(PageChecksPlan, PiecesLieInOneChunkAndFollowChunkOrder) {
  image::PageChecksums mine{kChunk, std::vector<uint64_t>(3)};
  image::PageChecksums parent{kChunk, std::vector<uint64_t>(2)};
  std::vector<restore::CheckedSource> sources = {{7, 4096, 3 * kChunk, &mine},
                                                 {8, 8192, 2 * kChunk, &parent}};
  std::vector<abi::BlobPageRun> runs = {
      // Area 0: a run across the image's chunks 0 and 1, then one in the parent's chunk 1.
      {0x100000, kChunk, 4096 + kChunk / 2, 7, 0},
      {0x200000, 4096, 8192 + kChunk + 4096, 8, 0},
      // Area 1 is shared memory: never copied, so no pieces.
      {0x300000, 4096, 4096, 7, 0},
      // Area 2: the image's last chunk.
      {0x400000, 8192, 4096 + 2 * kChunk, 7, 0},
  };
  std::vector<abi::BlobArea> areas = {anon_area(0x100000, 0x300000, 0, 2),
                                      anon_area(0x300000, 0x301000, 2, 1),
                                      anon_area(0x400000, 0x402000, 3, 1)};
  areas[1].flags |= abi::kAreaShared;
  auto plan = restore::plan_page_checks(sources, areas, runs);
  ASSERT_TRUE(plan) << plan.error().describe();
  ASSERT_EQ(plan->nchunks, 5u);
  EXPECT_EQ(plan->checks[1].first_chunk, 3u);
  // Chunk 0: the first half of run 0; chunk 1: its second half; chunk 2: area 2's run; chunk 3:
  // nothing; chunk 4: the parent's run.
  std::vector<uint32_t> starts = {0, 1, 2, 3, 3, 4};
  EXPECT_EQ(plan->piece_start, starts);
  ASSERT_EQ(plan->pieces.size(), 4u);
  EXPECT_EQ(plan->pieces[0].vaddr, 0x100000u);
  EXPECT_EQ(plan->pieces[0].len, kChunk / 2);
  EXPECT_EQ(plan->pieces[1].vaddr, 0x100000 + kChunk / 2);
  EXPECT_EQ(plan->pieces[1].image_offset, 4096 + kChunk);
  EXPECT_EQ(plan->pieces[2].area, 2u);
  EXPECT_EQ(plan->pieces[3].fd, 8);
  EXPECT_EQ(plan->pieces[3].area, 0u);
}

// Huge-page areas are read in after their chunks' checks, lazy ones are the keeper's.
TEST(PageChecksPlan, HugePageAreasGetPiecesLazyOnesDoNot) {
  image::PageChecksums mine{kChunk, std::vector<uint64_t>(2)};
  std::vector<restore::CheckedSource> sources = {{7, 4096, 2 * kChunk, &mine}};
  std::vector<abi::BlobPageRun> runs = {{0x200000, 4096, 4096 + kChunk, 7, 0},
                                        {0x400000, 4096, 4096, 7, 0}};
  std::vector<abi::BlobArea> areas = {anon_area(0x200000, 0x400000, 0, 1),
                                      anon_area(0x400000, 0x401000, 1, 1)};
  areas[0].flags |= abi::kAreaHugePages;
  areas[1].flags |= abi::kAreaLazy;
  EXPECT_TRUE(abi::area_loads_by_read(areas[0]));
  EXPECT_FALSE(abi::area_loads_by_copy(areas[0]));
  auto plan = restore::plan_page_checks(sources, areas, runs);
  ASSERT_TRUE(plan) << plan.error().describe();
  ASSERT_EQ(plan->pieces.size(), 1u);
  EXPECT_EQ(plan->pieces[0].area, 0u);
  std::vector<uint32_t> starts = {0, 0, 1};
  EXPECT_EQ(plan->piece_start, starts);
}

TEST(PageChecksPlan, RunOutsideThePageDataIsRefused) {
  image::PageChecksums mine{kChunk, std::vector<uint64_t>(1)};
  std::vector<restore::CheckedSource> sources = {{7, 4096, kChunk, &mine}};
  std::vector<abi::BlobPageRun> runs = {{0x100000, 8192, 4096 + kChunk - 4096, 7, 0}};
  std::vector<abi::BlobArea> areas = {anon_area(0x100000, 0x102000, 0, 1)};
  auto plan = restore::plan_page_checks(sources, areas, runs);
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().describe().find("outside the page data"), std::string::npos);
}

}  // namespace
}  // namespace vos
