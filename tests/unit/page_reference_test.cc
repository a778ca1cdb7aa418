// Unit tests of PageReference: a page is kept only when the reference stores exactly its bytes,
// and kept pages come back as homes in the reference's images, merged where they are adjacent.
#include "capture/page_reference.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace vos {
namespace {

constexpr uint64_t kPage = 4096;

std::string page_of(char c) {
  return std::string(kPage, c);
}

// A mapped file holding `header` bytes, then `pages`.
capture::PageReference::Source source_with(uint64_t header, const std::string& pages) {
  char tmpl[] = "/tmp/vos-ref-test-XXXXXX";
  int fd = ::mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  ::unlink(tmpl);
  std::string data(header, 'h');
  data += pages;
  EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  auto m = MappedFile::map_readonly(fd);
  ::close(fd);
  EXPECT_TRUE(m);
  return {std::move(*m), header};
}

TEST(PageReference, KeepsExactlyTheEqualPages) {
  std::vector<capture::PageReference::Source> sources;
  sources.push_back(source_with(8192, page_of('a') + page_of('b') + page_of('c')));
  sources.push_back(source_with(4096, page_of('x') + page_of('y')));
  // 0x10000..0x13000 in image 0 (offsets 0..), 0x13000..0x14000 in image 1 at offset 4096.
  std::vector<capture::PageHome> homes = {{0x10000, 3, 0, 0}, {0x13000, 1, kPage, 1}};
  capture::PageReference ref(homes, std::move(sources));

  EXPECT_TRUE(ref.keep_if_same(0x10000, page_of('a').data()));
  EXPECT_TRUE(ref.keep_if_same(0x11000, page_of('b').data()));
  std::string changed = page_of('c');
  changed[kPage - 1] = 'C';  // one byte differs: stored, not kept
  EXPECT_FALSE(ref.keep_if_same(0x12000, changed.data()));
  EXPECT_TRUE(ref.keep_if_same(0x13000, page_of('y').data()));
  EXPECT_FALSE(ref.keep_if_same(0x14000, page_of('y').data()));  // no copy in the reference
  EXPECT_FALSE(ref.keep_if_same(0x0f000, page_of('a').data()));

  auto kept = ref.take_kept();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].vaddr, 0x10000u);
  EXPECT_EQ(kept[0].npages, 2u);  // adjacent in memory and in the image: one run
  EXPECT_EQ(kept[0].offset, 0u);
  EXPECT_EQ(kept[0].image, 0u);
  EXPECT_EQ(kept[1].vaddr, 0x13000u);
  EXPECT_EQ(kept[1].npages, 1u);
  EXPECT_EQ(kept[1].offset, kPage);
  EXPECT_EQ(kept[1].image, 1u);
  EXPECT_EQ(ref.kept_pages(), 3u);
  EXPECT_TRUE(ref.take_kept().empty());  // handed out once
}

}  // namespace
}  // namespace vos
