// Unit tests of the image format: round trip, and every kind of damage gives a clear error,
// never a crash or a hang.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "image/finish_image.h"
#include "image/image_reader.h"
#include "image/image_writer.h"
#include "image/process_model.h"
#include "test_files.h"

namespace vos::image {
namespace {

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vos-image-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes an image with a meta section, a blob and three pages of known content.
  std::string write_sample(const std::string& name = "sample.vos") {
    std::string path = dir_ + "/imgs/" + name;
    auto w = ImageWriter::create(path);
    EXPECT_TRUE(w) << w.error().describe();
    ProcessImage p;
    p.name = "sample";
    p.argv = {"/bin/true", "x"};
    p.pid = 2;
    MemoryArea a;
    a.start = 0x10000;
    a.end = 0x13000;
    a.prot = 3;
    a.pages.push_back({0x10000, 3, 0});
    p.areas.push_back(a);
    std::string meta = to_json(p).dump();
    EXPECT_TRUE(w->begin_section(abi::SectionType::kMeta));
    EXPECT_TRUE(w->write(meta.data(), meta.size()));
    EXPECT_TRUE(w->end_section());
    EXPECT_TRUE(w->begin_section(abi::SectionType::kPages));
    std::string page(4096 * 3, '\0');
    for (size_t i = 0; i < page.size(); ++i) {
      page[i] = static_cast<char>(i * 7);
    }
    EXPECT_TRUE(w->write(page.data(), page.size()));
    EXPECT_TRUE(w->end_section());
    auto c = w->commit();
    EXPECT_TRUE(c) << c.error().describe();
    return path;
  }

  std::string read_file(const std::string& path) { return testing::read_file(path); }
  void write_file(const std::string& path, const std::string& data) {
    testing::write_file(path, data);
  }

  // Opens and fully verifies; returns the error text, or "" when the image is accepted.
  std::string open_and_verify(const std::string& path) {
    auto r = ImageReader::open(path);
    if (!r) {
      return r.error().describe();
    }
    auto v = r->verify();
    if (!v) {
      return v.error().describe();
    }
    auto meta = r->read_section(abi::SectionType::kMeta);
    if (!meta) {
      return meta.error().describe();
    }
    auto p = process_from_json(*meta);
    if (!p) {
      return p.error().describe();
    }
    return "";
  }

  std::string dir_;
};

TEST_F(ImageTest, RoundTrip) {
  std::string path = write_sample();
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(r->verify());
  auto meta = r->read_section(abi::SectionType::kMeta);
  ASSERT_TRUE(meta);
  auto p = process_from_json(*meta);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "sample");
  EXPECT_EQ(p->pid, 2);
  ASSERT_EQ(p->areas.size(), 1u);
  EXPECT_EQ(p->areas[0].pages[0].npages, 3u);
  const auto* pages = r->find(abi::SectionType::kPages);
  ASSERT_NE(pages, nullptr);
  EXPECT_EQ(pages->offset % 4096, 0u) << "page data must be mmap-able";
  std::string buf(4096, '\0');
  ASSERT_TRUE(r->read_at(*pages, 4096, buf.data(), buf.size()));
  EXPECT_EQ(static_cast<unsigned char>(buf[1]), static_cast<unsigned char>((4096 + 1) * 7));
}

// An older vos would reopen a deleted file's "... (deleted)" name instead of recreating it: an
// image with one says version 6; the new fields of a file round-trip, and an image with only
// hashed or stored files (which an older vos restores as it always did) keeps version 1.
TEST_F(ImageTest, DeletedFilesRoundTripAndNeedVersion4) {
  for (int variant = 0; variant < 3; ++variant) {  // deleted fd, deleted mapping, neither
    ProcessImage p;
    p.pid = 2;
    FdState f;
    f.fd = 3;
    f.path = "/tmp/x (deleted)";
    f.dev = 0x10302;
    f.ino = 77;
    f.mode = 0640;
    f.size = 5;
    f.data = {0, 5};
    f.deleted = variant == 0;
    f.content_hash = variant == 2 ? "00112233aabbccdd" : "";
    p.fds.push_back(f);
    MemoryArea a;
    a.start = 0x10000;
    a.end = 0x11000;
    a.kind = variant == 1 ? AreaKind::kDeletedFile : AreaKind::kAnon;
    a.memfd = 3;
    p.areas.push_back(a);
    std::string path = dir_ + "/deleted" + std::to_string(variant) + ".vos";
    auto w = ImageWriter::create(path);
    ASSERT_TRUE(w) << w.error().describe();
    auto done = finish_image(*w, "hello", p);
    ASSERT_TRUE(done) << done.error().describe();
    auto r = ImageReader::open(path);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->header().version,
              variant == 2 ? abi::kImageVersionPlain : abi::kImageVersionDeletedFiles);
    auto meta = r->read_section(abi::SectionType::kMeta);
    ASSERT_TRUE(meta);
    auto back = process_from_json(*meta);
    ASSERT_TRUE(back) << back.error().describe();
    const FdState& b = back->fds.at(0);
    EXPECT_EQ(b.deleted, variant == 0);
    EXPECT_EQ(b.dev, 0x10302u);
    EXPECT_EQ(b.mode, 0640u);
    EXPECT_EQ(b.content_hash, f.content_hash);
    EXPECT_EQ(back->areas.at(0).kind, a.kind);
  }
  // An fd from an older image: no device, mode or hash; not deleted.
  auto old = process_from_json(R"({"fds": [{"fd": 3, "kind": "file", "path": "/x"}]})");
  ASSERT_TRUE(old);
  EXPECT_FALSE(old->fds.at(0).deleted);
  EXPECT_EQ(old->fds.at(0).dev, 0u);
  EXPECT_TRUE(old->fds.at(0).content_hash.empty());
}

// An older vos would ignore `posix_timers` and restore a program whose timer ids lead nowhere:
// an image with timers says version 3, so that it refuses it; one without stays version 1.
TEST_F(ImageTest, PosixTimersRoundTripAndNeedVersion3) {
  ProcessImage p;
  p.pid = 2;
  PosixTimer t;
  t.id = 7;
  t.clockid = -6;
  t.notify = 4;
  t.signo = 34;
  t.sigval = 0x7f00c0ffee00ull;
  t.tid = 3;
  t.interval_ns = 20000000;
  t.value_ns = 1234;
  t.expires_ns = 99999;
  t.signal_pending = true;
  t.overrun = 5;
  p.posix_timers.push_back(t);
  for (bool with_timers : {true, false}) {
    std::string path = dir_ + (with_timers ? "/timers.vos" : "/none.vos");
    auto w = ImageWriter::create(path);
    ASSERT_TRUE(w) << w.error().describe();
    ProcessImage q = p;
    if (!with_timers) {
      q.posix_timers.clear();
    }
    auto done = finish_image(*w, "", q);
    ASSERT_TRUE(done) << done.error().describe();
    auto r = ImageReader::open(path);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->header().version,
              with_timers ? abi::kImageVersionPosixTimers : abi::kImageVersionPlain);
    auto meta = r->read_section(abi::SectionType::kMeta);
    ASSERT_TRUE(meta);
    auto back = process_from_json(*meta);
    ASSERT_TRUE(back) << back.error().describe();
    if (!with_timers) {
      EXPECT_TRUE(back->posix_timers.empty());
      continue;
    }
    ASSERT_EQ(back->posix_timers.size(), 1u);
    const PosixTimer& b = back->posix_timers[0];
    EXPECT_EQ(b.id, 7);
    EXPECT_EQ(b.clockid, -6);
    EXPECT_EQ(b.notify, 4);
    EXPECT_EQ(b.signo, 34);
    EXPECT_EQ(b.sigval, 0x7f00c0ffee00ull);
    EXPECT_EQ(b.tid, 3);
    EXPECT_EQ(b.interval_ns, 20000000);
    EXPECT_EQ(b.value_ns, 1234);
    EXPECT_EQ(b.expires_ns, 99999);
    EXPECT_TRUE(b.signal_pending);
    EXPECT_EQ(b.overrun, 5);
  }
  // Metadata from before timers were captured has none.
  auto old = process_from_json(R"({"pid": 2})");
  ASSERT_TRUE(old);
  EXPECT_TRUE(old->posix_timers.empty());
}

// An older vos would ignore `sysv_shm` and restore a program without the segments its ids name
// (and take a `sysv-shm` mapping for private memory): such an image says version 5.
TEST_F(ImageTest, SysvShmRoundTripAndNeedsVersion4) {
  ProcessImage p;
  p.pid = 2;
  SysvShm s;
  s.id = 65537;
  s.key = 0x5e0001;
  s.size = 3 * 4096 + 100;
  s.mode = 0640;
  s.removed = true;
  s.locked = true;
  s.uid = 101;
  s.gid = 104;
  s.cuid = 0;
  s.cgid = 1;
  s.cpid = 2;
  s.lpid = 3;
  s.pages.push_back({4096, 2, 8192, 0});
  p.sysv_shm.push_back(s);
  MemoryArea a;
  a.start = 0x7f0000000000;
  a.end = a.start + 4 * 4096;
  a.shared = true;
  a.kind = AreaKind::kSysvShm;
  a.name = "/SYSV005e0001 (deleted)";
  a.file_offset = 4096;
  a.shm_id = 65537;
  a.shm_rdonly = true;
  p.areas.push_back(a);
  std::string path = dir_ + "/shm.vos";
  auto w = ImageWriter::create(path);
  ASSERT_TRUE(w) << w.error().describe();
  ASSERT_TRUE(finish_image(*w, "", p));
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->header().version, abi::kImageVersionSysvShm);
  auto meta = r->read_section(abi::SectionType::kMeta);
  ASSERT_TRUE(meta);
  auto back = process_from_json(*meta);
  ASSERT_TRUE(back) << back.error().describe();
  ASSERT_EQ(back->sysv_shm.size(), 1u);
  const SysvShm& b = back->sysv_shm[0];
  EXPECT_EQ(b.id, 65537);
  EXPECT_EQ(b.key, 0x5e0001);
  EXPECT_EQ(b.size, 3u * 4096 + 100);
  EXPECT_EQ(b.mode, 0640u);
  EXPECT_TRUE(b.removed);
  EXPECT_TRUE(b.locked);
  EXPECT_EQ(b.uid, 101u);
  EXPECT_EQ(b.gid, 104u);
  EXPECT_EQ(b.cuid, 0u);
  EXPECT_EQ(b.cgid, 1u);
  EXPECT_EQ(b.cpid, 2);
  EXPECT_EQ(b.lpid, 3);
  ASSERT_EQ(b.pages.size(), 1u);
  EXPECT_EQ(b.pages[0].vaddr, 4096u);
  EXPECT_EQ(b.pages[0].npages, 2u);
  EXPECT_EQ(b.pages[0].offset, 8192u);
  ASSERT_EQ(back->areas.size(), 1u);
  EXPECT_EQ(back->areas[0].kind, AreaKind::kSysvShm);
  EXPECT_EQ(back->areas[0].shm_id, 65537);
  EXPECT_TRUE(back->areas[0].shm_rdonly);
  EXPECT_EQ(back->areas[0].file_offset, 4096u);
  // Metadata from before: no segments, and mappings name none.
  auto old = process_from_json(R"({"pid": 2, "areas": [{"start": 4096, "end": 8192}]})");
  ASSERT_TRUE(old);
  EXPECT_TRUE(old->sysv_shm.empty());
  EXPECT_EQ(old->areas[0].shm_id, -1);
  EXPECT_FALSE(old->areas[0].shm_rdonly);
}

// A process tree: the other processes ride in the top one's metadata, with what they share.
TEST_F(ImageTest, ConsoleAndStoppedJobRoundTripAndNeedVersion9) {
  ProcessImage top;
  top.pid = 100;
  top.console.present = true;
  top.console.termios = std::string(120, 'a');
  top.console.rows = 33;
  top.console.cols = 97;
  top.console.foreground = 101;
  top.console.session = 1;
  top.console.input = "6162";
  top.console.screen = "1b5b324a";
  FdState tty;
  tty.fd = 0;
  tty.kind = FdKind::kConsole;
  tty.flags = 2;
  top.fds.push_back(tty);
  ProcessImage job;
  job.pid = 101;
  job.ppid = 100;
  job.stopped = true;
  top.processes.push_back(job);
  std::string path = dir_ + "/console.vos";
  auto w = ImageWriter::create(path);
  ASSERT_TRUE(w) << w.error().describe();
  ASSERT_TRUE(finish_image(*w, "", top));
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->header().version, abi::kImageVersionConsole);
  auto meta = r->read_section(abi::SectionType::kMeta);
  ASSERT_TRUE(meta);
  auto back = process_from_json(*meta);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_TRUE(back->console.present);
  EXPECT_EQ(back->console.termios, top.console.termios);
  EXPECT_EQ(back->console.rows, 33);
  EXPECT_EQ(back->console.cols, 97);
  EXPECT_EQ(back->console.foreground, 101);
  EXPECT_EQ(back->console.session, 1);
  EXPECT_EQ(back->console.input, "6162");
  EXPECT_EQ(back->console.screen, "1b5b324a");
  EXPECT_EQ(back->fds[0].kind, FdKind::kConsole);
  ASSERT_EQ(back->processes.size(), 1u);
  EXPECT_TRUE(back->processes[0].stopped);
}

TEST_F(ImageTest, ProcessTreeRoundTripAndNeedsVersion8) {
  ProcessImage top;
  top.pid = 100;
  top.ppid = 1;
  FdState out;
  out.fd = 1;
  out.tree_desc = 3;
  top.fds.push_back(out);
  MemoryArea shared;
  shared.start = 0x7f0000000000;
  shared.end = shared.start + 8192;
  shared.shared = true;
  shared.kind = AreaKind::kSharedAnon;
  shared.shared_object = 2;
  top.areas.push_back(shared);
  ProcessImage child;
  child.pid = 101;
  child.ppid = 100;
  child.pgid = 101;
  child.fds.push_back(out);
  child.areas.push_back(shared);
  top.processes.push_back(child);
  ProcessImage zombie;
  zombie.pid = 102;
  zombie.ppid = 100;
  zombie.zombie = true;
  zombie.exit_status = 7 << 8;
  top.processes.push_back(zombie);
  std::string path = dir_ + "/tree.vos";
  auto w = ImageWriter::create(path);
  ASSERT_TRUE(w) << w.error().describe();
  ASSERT_TRUE(finish_image(*w, "", top));
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->header().version, abi::kImageVersionTrees);
  auto meta = r->read_section(abi::SectionType::kMeta);
  ASSERT_TRUE(meta);
  auto back = process_from_json(*meta);
  ASSERT_TRUE(back) << back.error().describe();
  ASSERT_EQ(back->processes.size(), 2u);
  EXPECT_EQ(back->fds[0].tree_desc, 3u);
  EXPECT_EQ(back->areas[0].shared_object, 2u);
  const ProcessImage& c = back->processes[0];
  EXPECT_EQ(c.pid, 101);
  EXPECT_EQ(c.ppid, 100);
  EXPECT_EQ(c.pgid, 101);
  EXPECT_EQ(c.fds[0].tree_desc, 3u);
  EXPECT_EQ(c.areas[0].shared_object, 2u);
  EXPECT_TRUE(c.processes.empty());
  EXPECT_TRUE(back->processes[1].zombie);
  EXPECT_EQ(back->processes[1].exit_status, 7 << 8);
  // An unknown kind is refused in a process of the tree too, not read as the first kind.
  auto bad = process_from_json(R"({"pid": 2, "processes": [{"pid": 3, "fds": [{"kind": "x"}]}]})");
  EXPECT_FALSE(bad);
  // A single process's image has none of it.
  auto single = process_from_json(R"({"pid": 2, "fds": [{"fd": 0}]})");
  ASSERT_TRUE(single);
  EXPECT_TRUE(single->processes.empty());
  EXPECT_EQ(single->fds[0].tree_desc, 0u);
  EXPECT_FALSE(single->zombie);
}

// Page data written around the page cache (O_DIRECT, for whole pages from page-aligned memory)
// and the rest through it must make the very same file as writing everything through it.
TEST_F(ImageTest, PageDataAroundThePageCacheMakesTheSameFile) {
  constexpr size_t kPage = 4096;
  void* mem =
      ::mmap(nullptr, 5 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* aligned = static_cast<char*>(mem);
  for (size_t i = 0; i < 5 * kPage; ++i) {
    aligned[i] = static_cast<char>(i * 13 + i / kPage);
  }
  std::string unaligned(kPage + 1, 'u');  // written from an odd address: through the cache
  auto write = [&](const std::string& path, bool direct) {
    auto w = ImageWriter::create(path);
    EXPECT_TRUE(w) << w.error().describe();
    if (direct) {
      auto st = w->bypass_page_cache();
      if (!st) {
        return st;
      }
      EXPECT_TRUE(w->bypasses_page_cache());
    }
    EXPECT_TRUE(w->begin_section(abi::SectionType::kMeta));
    EXPECT_TRUE(w->write("{\"name\":\"x\"}", 12));  // odd length, before the pages
    EXPECT_TRUE(w->end_section());
    EXPECT_TRUE(w->begin_section(abi::SectionType::kPages));
    EXPECT_TRUE(w->write(aligned, 3 * kPage));
    EXPECT_TRUE(w->write(unaligned.data() + 1, kPage));
    EXPECT_TRUE(w->write(aligned + 3 * kPage, 2 * kPage));
    EXPECT_TRUE(w->end_section());
    return w->commit();
  };
  std::string plain = dir_ + "/imgs/plain.vos", direct = dir_ + "/imgs/direct.vos";
  ASSERT_TRUE(write(plain, false));
  auto st = write(direct, true);
  ::munmap(mem, 5 * kPage);
  if (!st && st.error().err() == EINVAL) {
    GTEST_SKIP() << "this file system refuses O_DIRECT: " << st.error().describe();
  }
  ASSERT_TRUE(st) << st.error().describe();
  EXPECT_EQ(read_file(direct), read_file(plain));
  auto r = ImageReader::open(direct);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r->verify());
}

TEST_F(ImageTest, FilesArePrivateAndNoTempLeftBehind) {
  std::string path = write_sample();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/imgs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (auto& e : std::filesystem::directory_iterator(dir_ + "/imgs")) {
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  }
}

TEST_F(ImageTest, UncommittedWriterLeavesNothing) {
  std::string path = dir_ + "/imgs/never.vos";
  {
    auto w = ImageWriter::create(path);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->begin_section(abi::SectionType::kMeta));
    ASSERT_TRUE(w->write("{}", 2));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/imgs"));
}

TEST_F(ImageTest, MissingFile) {
  auto e = open_and_verify(dir_ + "/nope.vos");
  EXPECT_NE(e.find("No such file"), std::string::npos) << e;
}

TEST_F(ImageTest, EveryTruncationIsRejected) {
  std::string path = write_sample();
  std::string data = read_file(path);
  std::string cut = dir_ + "/cut.vos";
  // Every length up to the full size, stepping finely near the ends where the header and table
  // live.
  for (size_t len = 0; len < data.size(); len += (len < 128 || len + 300 > data.size()) ? 1 : 97) {
    write_file(cut, data.substr(0, len));
    std::string e = open_and_verify(cut);
    EXPECT_FALSE(e.empty()) << "accepted an image truncated to " << len << " bytes";
  }
  write_file(cut, data.substr(0, data.size() - 1));
  EXPECT_NE(open_and_verify(cut).find("truncated"), std::string::npos);
}

TEST_F(ImageTest, EveryBitFlipInUsedBytesIsRejected) {
  std::string path = write_sample();
  std::string data = read_file(path);
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r);
  // Bytes that carry meaning: the header, each section's content and the table.
  std::vector<std::pair<uint64_t, uint64_t>> used = {{0, sizeof(abi::ImageHeader)}};
  for (const auto& s : r->sections()) {
    used.push_back({s.offset, s.size});
  }
  used.push_back(
      {r->header().section_table_offset, r->header().section_count * sizeof(abi::SectionEntry)});
  std::mt19937 rng(42);
  std::string flipped_path = dir_ + "/flip.vos";
  int tried = 0;
  for (auto [off, len] : used) {
    for (int k = 0; k < 64; ++k) {
      uint64_t pos = off + rng() % len;
      std::string d = data;
      d[pos] = static_cast<char>(d[pos] ^ (1 << (rng() % 8)));
      write_file(flipped_path, d);
      EXPECT_FALSE(open_and_verify(flipped_path).empty()) << "bit flip at " << pos << " accepted";
      ++tried;
    }
  }
  EXPECT_GT(tried, 100);
}

TEST_F(ImageTest, PageDataFlipNamesTheSection) {
  std::string path = write_sample();
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r);
  uint64_t at = r->find(abi::SectionType::kPages)->offset + 5000;
  std::string data = read_file(path);
  data[at] ^= 1;
  write_file(path, data);
  std::string e = open_and_verify(path);
  EXPECT_NE(e.find("pages"), std::string::npos) << e;
  EXPECT_NE(e.find("checksum"), std::string::npos) << e;
}

TEST_F(ImageTest, WrongVersionAndForeignFile) {
  std::string path = write_sample();
  std::string data = read_file(path);
  write_file(dir_ + "/foreign", std::string(8192, 'x'));
  EXPECT_NE(open_and_verify(dir_ + "/foreign").find("not a vos image"), std::string::npos);

  // A well-formed header from a future version must be refused by version, not as corruption.
  abi::ImageHeader h;
  std::memcpy(&h, data.data(), sizeof h);
  h.version = 99;
  h.header_checksum = 0;
  h.header_checksum = XXH3_64bits(&h, sizeof h);
  std::memcpy(data.data(), &h, sizeof h);
  write_file(path, data);
  EXPECT_NE(open_and_verify(path).find("unsupported image version 99"), std::string::npos);
}

TEST_F(ImageTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string d(rng() % 20000, '\0');
    for (auto& c : d) {
      c = static_cast<char>(rng());
    }
    if (d.size() >= 8 && i % 2 == 0) {
      std::memcpy(d.data(), abi::kImageMagic, 8);
    }
    write_file(dir_ + "/garbage", d);
    EXPECT_FALSE(open_and_verify(dir_ + "/garbage").empty());
  }
}

}  // namespace
}  // namespace vos::image
