// Unit tests of compressed page data: round trip with both codecs and random-access reads of
// any logical range, plain images unchanged, and damaged frames or frame indexes give errors,
// never a crash or wrong page data.
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "image/image_reader.h"
#include "image/image_writer.h"
#include "image/page_codec.h"
#include "image/page_reader.h"
#include "test_files.h"

namespace vos::abi {
// Names the codec in test names (found by argument-dependent lookup).
void PrintTo(PageCodec c, std::ostream* os) {
  *os << image::codec_name(static_cast<uint32_t>(c));
}
}  // namespace vos::abi

namespace vos::image {
namespace {

// About 5.3 MiB of memory-like data: text-like runs, zero stretches and random bytes, so some
// frames compress well and some (random) are stored plain.
std::string sample_pages() {
  std::mt19937_64 rng(42);
  std::string s;
  for (int block = 0; block < 1360; ++block) {
    std::string page(4096, '\0');
    // Runs of each kind longer than a frame: 600 random pages hold two whole frames.
    int kind = block < 300 ? 0 : block < 900 ? 1 : block < 1100 ? 2 : 3;
    if (kind == 0) {
      for (size_t i = 0; i < page.size(); ++i) {
        page[i] = "checkpoint restore "[(i + block) % 19];
      }
    } else if (kind == 1) {
      for (auto& c : page) {
        c = static_cast<char>(rng());
      }
    } else if (kind == 2) {
      std::memcpy(page.data(), &block, sizeof block);  // mostly zeros
    } else {
      for (size_t i = 0; i < page.size(); i += 8) {
        uint64_t v = (rng() & 0xff) * 0x0101;
        std::memcpy(page.data() + i, &v, 8);
      }
    }
    s += page;
  }
  return s;
}

class PageCompressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vos-pages-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    pages_ = sample_pages();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes the sample pages in uneven pieces (so frames straddle writes) with a meta section
  // after them, as vos checkpoint does.
  std::string write_image(abi::PageCodec codec, unsigned threads, const std::string& name) {
    std::string path = dir_ + "/" + name;
    auto w = ImageWriter::create(path);
    EXPECT_TRUE(w) << w.error().describe();
    w->set_page_codec(codec, threads);
    EXPECT_TRUE(w->begin_section(abi::SectionType::kPages));
    std::mt19937 rng(7);
    for (size_t off = 0; off < pages_.size();) {
      size_t n = std::min<size_t>(pages_.size() - off, 4096 * (1 + rng() % 300));
      EXPECT_EQ(w->section_position(), off);  // page runs refer to logical offsets
      EXPECT_TRUE(w->write(pages_.data() + off, n));
      off += n;
    }
    EXPECT_TRUE(w->end_section());
    std::string meta = "{}";
    EXPECT_TRUE(w->begin_section(abi::SectionType::kMeta));
    EXPECT_TRUE(w->write(meta.data(), meta.size()));
    EXPECT_TRUE(w->end_section());
    auto c = w->commit();
    EXPECT_TRUE(c) << c.error().describe();
    EXPECT_EQ(w->pages_logical_bytes(), pages_.size());
    return path;
  }

  std::string read_file(const std::string& path) { return testing::read_file(path); }
  void write_file(const std::string& path, const std::string& data) {
    testing::write_file(path, data);
  }

  // Replaces section `type`'s bytes with `content` (same offset, at most the old size rounded
  // to its padding) and fixes every checksum, so only the reader's own checks can object.
  void rewrite_section(const std::string& path, abi::SectionType type, const std::string& content) {
    std::string f = read_file(path);
    abi::ImageHeader h;
    std::memcpy(&h, f.data(), sizeof h);
    auto* table = reinterpret_cast<abi::SectionEntry*>(f.data() + h.section_table_offset);
    for (uint32_t i = 0; i < h.section_count; ++i) {
      if (table[i].type == static_cast<uint32_t>(type)) {
        ASSERT_LE(table[i].offset + content.size(), h.section_table_offset);
        std::memcpy(f.data() + table[i].offset, content.data(), content.size());
        table[i].size = content.size();
        table[i].checksum = XXH3_64bits(content.data(), content.size());
      }
    }
    h.section_table_checksum = XXH3_64bits(table, h.section_count * sizeof(abi::SectionEntry));
    h.header_checksum = 0;
    h.header_checksum = XXH3_64bits(&h, sizeof h);
    std::memcpy(f.data(), &h, sizeof h);
    write_file(path, f);
  }

  std::string section_bytes(const std::string& path, abi::SectionType type) {
    auto r = ImageReader::open(path);
    EXPECT_TRUE(r);
    auto s = r->read_section(type);
    EXPECT_TRUE(s);
    return s ? *s : "";
  }

  // The error PageReader::open gives, or "".
  std::string open_pages_error(const std::string& path) {
    auto r = ImageReader::open(path);
    if (!r) {
      return r.error().describe();
    }
    auto p = PageReader::open(*r);
    return p ? "" : p.error().describe();
  }

  std::string dir_;
  std::string pages_;
};

class CodecTest : public PageCompressionTest,
                  public ::testing::WithParamInterface<abi::PageCodec> {};

TEST_P(CodecTest, RoundTripAndRandomAccess) {
  std::string path = write_image(GetParam(), 3, "c.vos");
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->header().version, abi::kImageVersionFrames);
  ASSERT_TRUE(r->verify()) << r->verify().error().describe();
  auto p = PageReader::open(*r);
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_TRUE(p->compressed());
  EXPECT_EQ(p->codec(), static_cast<uint32_t>(GetParam()));
  EXPECT_EQ(p->logical_size(), pages_.size());
  // Compressible data must really shrink; the random 44% cannot.
  EXPECT_LT(p->stored_size(), pages_.size() * 3 / 5);
  EXPECT_GT(p->stored_size(), pages_.size() * 2 / 5);
  bool plain = false, packed = false;
  for (const auto& f : p->frames()) {
    plain |= f.codec == static_cast<uint32_t>(abi::PageCodec::kNone);
    packed |= f.codec == static_cast<uint32_t>(GetParam());
  }
  EXPECT_TRUE(plain) << "a frame of random bytes should be stored plain";
  EXPECT_TRUE(packed);
  EXPECT_FALSE(p->stored_as_logical());

  std::string all(pages_.size(), '\0');
  ASSERT_TRUE(p->read(0, all.data(), all.size()));
  EXPECT_TRUE(all == pages_);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 300; ++i) {
    uint64_t off = rng() % pages_.size();
    uint64_t len = i % 3 == 0 ? rng() % 4096 : rng() % (3 << 20);
    len = std::min<uint64_t>(len, pages_.size() - off);
    std::string got(len, '\0');
    ASSERT_TRUE(p->read(off, got.data(), len)) << off << "+" << len;
    ASSERT_TRUE(std::memcmp(got.data(), pages_.data() + off, len) == 0) << off << "+" << len;
  }
  char c;
  EXPECT_TRUE(p->read(pages_.size() - 1, &c, 1));
  EXPECT_EQ(c, pages_.back());
  auto past = p->read(pages_.size(), &c, 1);
  ASSERT_FALSE(past);
  EXPECT_NE(past.error().describe().find("outside"), std::string::npos);
}

TEST_P(CodecTest, OneThreadAndManyThreadsWriteTheSameImage) {
  std::string a = read_file(write_image(GetParam(), 1, "a.vos"));
  std::string b = read_file(write_image(GetParam(), 8, "b.vos"));
  EXPECT_TRUE(a == b) << "frames must be written in logical order whatever the scheduling";
}

TEST_P(CodecTest, DamagedFrameIsAnErrorNeverWrongData) {
  std::string path = write_image(GetParam(), 2, "d.vos");
  std::string good = read_file(path);
  abi::SectionEntry pages{};
  abi::PageFrame frame{};
  {
    auto r = ImageReader::open(path);
    ASSERT_TRUE(r);
    pages = *r->find(abi::SectionType::kPages);
    auto p = PageReader::open(*r);
    ASSERT_TRUE(p);
    for (const auto& f : p->frames()) {
      if (f.codec == static_cast<uint32_t>(GetParam())) {
        frame = f;
        break;
      }
    }
  }
  ASSERT_GT(frame.stored_size, 0u);
  int errors = 0;
  int tries = 0;
  for (uint32_t at = 0; at < frame.stored_size; at += 1 + frame.stored_size / 60, ++tries) {
    std::string bad = good;
    bad[pages.offset + frame.stored_offset + at] ^= 0x5a;
    write_file(path, bad);
    auto r = ImageReader::open(path);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->verify()) << "the section checksum covers the stored bytes";
    auto p = PageReader::open(*r);
    ASSERT_TRUE(p);
    std::string got(frame.logical_size, '\0');
    auto s = p->read(frame.logical_offset, got.data(), got.size());
    if (!s) {
      ++errors;
      EXPECT_NE(s.error().describe().find("corrupt"), std::string::npos) << s.error().describe();
    } else {
      // A flip the codec ignores is fine; returning different data is not.
      EXPECT_TRUE(std::memcmp(got.data(), pages_.data() + frame.logical_offset, got.size()) == 0);
    }
  }
  EXPECT_GT(errors, tries / 2);
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest,
                         ::testing::Values(abi::PageCodec::kLz4, abi::PageCodec::kZstd),
                         [](const auto& info) {
                           return std::string(codec_name(static_cast<uint32_t>(info.param)));
                         });

TEST_F(PageCompressionTest, IncompressibleFramesAreStoredInPlace) {
  std::mt19937_64 rng(3);
  for (auto& c : pages_) {
    c = static_cast<char>(rng());
  }
  std::string path = write_image(abi::PageCodec::kZstd, 2, "r.vos");
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r);
  auto p = PageReader::open(*r);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->compressed());
  EXPECT_EQ(p->stored_size(), pages_.size());
  EXPECT_TRUE(p->stored_as_logical()) << "restore may then read the image directly";
  std::string got(pages_.size(), '\0');
  ASSERT_TRUE(p->read(0, got.data(), got.size()));
  EXPECT_TRUE(got == pages_);
}

TEST_F(PageCompressionTest, PlainImageStaysVersionOne) {
  std::string path = write_image(abi::PageCodec::kNone, 0, "p.vos");
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header().version, abi::kImageVersionPlain);
  EXPECT_EQ(r->find(abi::SectionType::kPageFrames), nullptr);
  auto p = PageReader::open(*r);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->compressed());
  EXPECT_EQ(p->stored_size(), pages_.size());
  std::string got(10000, '\0');
  ASSERT_TRUE(p->read(123456, got.data(), got.size()));
  EXPECT_TRUE(std::memcmp(got.data(), pages_.data() + 123456, got.size()) == 0);
}

TEST_F(PageCompressionTest, TruncatedOrInconsistentIndexIsRejected) {
  std::string path = write_image(abi::PageCodec::kZstd, 2, "i.vos");
  std::string index = section_bytes(path, abi::SectionType::kPageFrames);
  ASSERT_GT(index.size(), sizeof(abi::PageFramesHeader) + sizeof(abi::PageFrame));
  std::string good = read_file(path);
  auto with_index = [&](const std::string& idx) {
    write_file(path, good);
    rewrite_section(path, abi::SectionType::kPageFrames, idx);
    return open_pages_error(path);
  };
  // Cut anywhere: inside the header, inside an entry, or a whole entry short.
  for (size_t cut : {size_t{0}, size_t{7}, sizeof(abi::PageFramesHeader) + 13,
                     index.size() - sizeof(abi::PageFrame), index.size() - 1}) {
    std::string e = with_index(index.substr(0, cut));
    EXPECT_NE(e.find("corrupt: page frame"), std::string::npos) << cut << ": " << e;
  }
  auto entry = [&](size_t i) {
    return reinterpret_cast<abi::PageFrame*>(index.data() + sizeof(abi::PageFramesHeader)) + i;
  };
  const std::string idx = index;
  entry(1)->stored_offset = 1ull << 40;
  EXPECT_NE(with_index(index).find("outside the pages section"), std::string::npos);
  index = idx;
  entry(0)->logical_size = 0xffffffff;
  EXPECT_NE(with_index(index).find("does not continue"), std::string::npos);
  index = idx;
  entry(2)->codec = 77;
  EXPECT_NE(with_index(index).find("unknown codec"), std::string::npos);
  index = idx;
  reinterpret_cast<abi::PageFramesHeader*>(index.data())->logical_size += 4096;
  EXPECT_NE(with_index(index).find("index says"), std::string::npos);
  index = idx;
  EXPECT_EQ(with_index(index), "");

  // Unfixed damage to the index is caught by its checksum.
  write_file(path, good);
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r);
  size_t at = r->find(abi::SectionType::kPageFrames)->offset + 20;
  std::string bad = good;
  bad[at] ^= 1;
  write_file(path, bad);
  EXPECT_NE(open_pages_error(path).find("checksum mismatch"), std::string::npos);
}

TEST_F(PageCompressionTest, TruncatedCompressedImageIsRejected) {
  std::string path = write_image(abi::PageCodec::kLz4, 2, "t.vos");
  std::string good = read_file(path);
  for (size_t len : {size_t{0}, size_t{100}, size_t{5000}, good.size() / 2, good.size() - 1}) {
    write_file(path, good.substr(0, len));
    auto r = ImageReader::open(path);
    EXPECT_FALSE(r) << len;
  }
}

}  // namespace
}  // namespace vos::image
