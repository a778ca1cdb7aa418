// Unit tests of the write-behind page sink: bytes land in the image in the order given and at the
// positions the sink reported, whether they came through its buffers or not, and a failed write
// on its thread reaches the caller.
#include "capture/write_behind_sink.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "image/image_reader.h"
#include "image/image_writer.h"

namespace vos {
namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/vos-sink-test-XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl), nullptr);
  return tmpl;
}

TEST(WriteBehindSink, KeepsOrderAndPositions) {
  std::string dir = temp_dir();
  std::string path = dir + "/a.vos";
  std::string expected;
  std::vector<std::pair<uint64_t, std::string>> placed;  // position reported, bytes given
  {
    auto w = image::ImageWriter::create(path);
    ASSERT_TRUE(w) << w.error().describe();
    ASSERT_TRUE(w->begin_section(abi::SectionType::kPages));
    capture::WriteBehindSink sink(*w);
    for (int batch = 0; batch < 7; ++batch) {
      size_t size = (batch % 3 + 1) * 4096 * 100;
      char* buf = sink.direct(size);
      ASSERT_NE(buf, nullptr);
      for (size_t i = 0; i < size; ++i) {
        buf[i] = static_cast<char>(batch * 31 + i / 4096);
      }
      // Two pieces with a gap between them (as when zero pages are dropped).
      placed.emplace_back(sink.position(), std::string(buf, 4096));
      ASSERT_TRUE(sink.write(buf, 4096));
      placed.emplace_back(sink.position(), std::string(buf + 8192, size - 8192));
      ASSERT_TRUE(sink.write(buf + 8192, size - 8192));
      if (batch == 3) {  // data from elsewhere goes after everything queued before it
        std::string other(4096, 'x');
        placed.emplace_back(sink.position(), other);
        ASSERT_TRUE(sink.write(other.data(), other.size()));
      }
    }
    ASSERT_TRUE(sink.finish());
    EXPECT_EQ(w->section_position(), placed.back().first + placed.back().second.size());
    ASSERT_TRUE(w->end_section());
    ASSERT_TRUE(w->commit());
  }
  auto reader = image::ImageReader::open(path);
  ASSERT_TRUE(reader) << reader.error().describe();
  ASSERT_TRUE(reader->verify());
  auto pages = reader->read_section(abi::SectionType::kPages);
  ASSERT_TRUE(pages) << pages.error().describe();
  for (const auto& [pos, bytes] : placed) {
    ASSERT_LE(pos + bytes.size(), pages->size());
    EXPECT_EQ(pages->compare(pos, bytes.size(), bytes), 0) << "at position " << pos;
  }
  std::filesystem::remove_all(dir);
}

TEST(WriteBehindSink, ReportsAFailedWrite) {
  std::string dir = temp_dir();
  auto w = image::ImageWriter::create(dir + "/a.vos");
  ASSERT_TRUE(w) << w.error().describe();
  ASSERT_TRUE(w->begin_section(abi::SectionType::kPages));
  // Files may not grow past 1 MiB from here: the sink's thread gets EFBIG.
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 1 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status result;
  {
    capture::WriteBehindSink sink(*w);
    for (int batch = 0; batch < 4 && result.ok(); ++batch) {
      char* buf = sink.direct(1 << 20);
      ASSERT_NE(buf, nullptr);
      std::memset(buf, batch + 1, 1 << 20);
      result = sink.write(buf, 1 << 20);
    }
    Status finished = sink.finish();
    if (result.ok()) {
      result = finished;
    }
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().err(), EFBIG) << result.error().describe();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vos
