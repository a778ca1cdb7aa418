// Unit tests of System V shared memory capture's pure parts: reading /proc/sysvipc, and which
// attachments a restore can rebuild.
#include <gtest/gtest.h>

#include "capture/sysv_shm_capture.h"
#include "capture/sysvipc.h"
#include "image/sysv_shm_layout.h"

namespace vos::capture {
namespace {

TEST(SysvIpc, ParsesShmListing) {
  auto l = parse_sysvipc_shm(
      "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  "
      "cgid      atime      dtime      ctime                   rss                  swap\n"
      "1577115876          1   640               3145828    42    43      5   101   104     0     "
      "0 1796174133          0 1796174133               2523136                  8192\n"
      "         0         65537  1600                 65536    42    42      1     0     0     "
      "0     0 1796174133          0 1796174133                 65536                     0\n");
  ASSERT_TRUE(l) << l.error().describe();
  ASSERT_EQ(l->size(), 2u);
  const auto& a = (*l)[0];
  EXPECT_EQ(a.key, 1577115876);
  EXPECT_EQ(a.id, 1);
  EXPECT_EQ(a.mode, 0640u);
  EXPECT_EQ(a.size, 3145828u);
  EXPECT_EQ(a.cpid, 42);
  EXPECT_EQ(a.lpid, 43);
  EXPECT_EQ(a.nattch, 5u);
  EXPECT_EQ(a.uid, 101u);
  EXPECT_EQ(a.gid, 104u);
  EXPECT_EQ(a.rss, 2523136u);
  EXPECT_EQ(a.swap, 8192u);
  const auto& b = (*l)[1];
  EXPECT_EQ(b.key, 0);
  EXPECT_EQ(b.id, 65537);
  EXPECT_EQ(b.mode, 01600u);  // SHM_DEST: removed while attached
  EXPECT_EQ(b.swap, 0u);
}

TEST(SysvIpc, NegativeKeysAndEmptyLists) {
  auto l = parse_sysvipc_shm(
      "       key      shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss "
      "swap\n"
      "-559038737 7 600 4096 2 2 0 0 0 0 0 1 0 1 0 0\n");
  ASSERT_TRUE(l) << l.error().describe();
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ(static_cast<uint32_t>((*l)[0].key), 0xdeadbeefu);  // printed as a signed int
  auto none = parse_sysvipc_ids(
      "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
      "sem");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto sems = parse_sysvipc_ids(
      "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"
      "      4660          3   600          2     0     0     0     0          0 1796174133\n",
      "sem");
  ASSERT_TRUE(sems);
  ASSERT_EQ(sems->size(), 1u);
  EXPECT_EQ((*sems)[0].key, 4660);
  EXPECT_EQ((*sems)[0].id, 3);
  EXPECT_FALSE(parse_sysvipc_shm("garbage\n1 2 3\n"));
  EXPECT_FALSE(parse_sysvipc_shm(""));
}

MapsEntry shm_map(uint64_t start, uint64_t end, uint64_t offset, uint64_t id) {
  MapsEntry m;
  m.start = start;
  m.end = end;
  m.r = m.w = m.shared = true;
  m.offset = offset;
  m.ino = id;
  m.name = "/SYSV00001234 (deleted)";
  return m;
}

// One shmat may be split by mprotect or munmap; restore attaches it whole at its first page.
TEST(SysvShmAttachments, SplitAttachmentsAreFineOnlyWithTheirFirstPage) {
  std::vector<MapsEntry> maps = {
      shm_map(0x10000, 0x11000, 0, 5), shm_map(0x11000, 0x12000, 0x1000, 5),
      shm_map(0x13000, 0x14000, 0x3000, 5),  // a page unmapped between: same attachment
      shm_map(0x20000, 0x24000, 0, 5),       // a second attachment of the same segment
      shm_map(0x30000, 0x31000, 0, 6)};
  EXPECT_TRUE(check_shm_attachments(maps).empty());
  EXPECT_TRUE(is_sysv_shm_mapping(maps[0]));
  maps.push_back(shm_map(0x41000, 0x42000, 0x1000, 6));  // its first page unmapped
  auto errors = check_shm_attachments(maps);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].describe().find("System V segment 6 attached at 0x40000 with its first"),
            std::string::npos)
      << errors[0].describe();
  MapsEntry priv = shm_map(0x50000, 0x51000, 0x1000, 7);
  priv.shared = false;  // not an attachment (shmat maps shared), whatever its name
  EXPECT_FALSE(is_sysv_shm_mapping(priv));
}

}  // namespace
}  // namespace vos::capture

namespace vos::image {
namespace {

image::MemoryArea shm_area(uint64_t start, uint64_t end, uint64_t offset, int32_t id) {
  image::MemoryArea a;
  a.start = start;
  a.end = end;
  a.shared = true;
  a.kind = image::AreaKind::kSysvShm;
  a.file_offset = offset;
  a.shm_id = id;
  return a;
}

image::ProcessImage with_segments() {
  image::ProcessImage p;
  image::SysvShm s;
  s.id = 5;
  s.size = 4 * 4096 + 1;  // five pages mapped
  p.sysv_shm.push_back(s);
  s.id = 6;
  s.size = 4096;
  p.sysv_shm.push_back(s);
  return p;
}

// An attachment split by mprotect, with its second and last pages unmapped and another mapping
// in the first gap: one shmat, a hole only where nothing of the image is.
TEST(SysvShmLayout, AttachmentsAndTheirHoles) {
  auto p = with_segments();
  p.areas.push_back(shm_area(0x10000, 0x11000, 0, 5));
  image::MemoryArea other;
  other.start = 0x11000;
  other.end = 0x12000;
  p.areas.push_back(other);
  p.areas.push_back(shm_area(0x13000, 0x14000, 0x3000, 5));
  p.areas.push_back(shm_area(0x20000, 0x21000, 0, 6));
  auto atts = shm_attachments(p);
  ASSERT_TRUE(atts) << atts.error().describe();
  ASSERT_EQ(atts->size(), 2u);
  EXPECT_EQ((*atts)[0].id, 5);
  EXPECT_EQ((*atts)[0].base, 0x10000u);
  EXPECT_EQ((*atts)[0].end, 0x15000u);
  EXPECT_EQ((*atts)[1].id, 6);
  auto holes = shm_holes(p, (*atts)[0]);
  ASSERT_EQ(holes.size(), 2u);
  EXPECT_EQ(holes[0], std::make_pair(uint64_t{0x12000}, uint64_t{0x13000}));
  EXPECT_EQ(holes[1], std::make_pair(uint64_t{0x14000}, uint64_t{0x15000}));
  EXPECT_TRUE(shm_holes(p, (*atts)[1]).empty());
}

TEST(SysvShmLayout, RefusesWhatCannotBeAttached) {
  auto p = with_segments();
  p.areas = {shm_area(0x10000, 0x11000, 0, 7)};
  auto atts = shm_attachments(p);
  ASSERT_FALSE(atts);
  EXPECT_NE(atts.error().describe().find("which the image does not have"), std::string::npos);
  p.areas = {shm_area(0x10000, 0x16000, 0, 5)};  // six pages of a five-page segment
  atts = shm_attachments(p);
  ASSERT_FALSE(atts);
  EXPECT_NE(atts.error().describe().find("outside System V segment 5"), std::string::npos);
  p.areas = {shm_area(0x11000, 0x12000, 0x1000, 5)};  // its first page gone
  atts = shm_attachments(p);
  ASSERT_FALSE(atts);
  EXPECT_NE(atts.error().describe().find("not the first page"), std::string::npos);
}

// A later attachment may lie where the program unmapped part of an earlier one (restore attaches
// it over the earlier one's range), but not over a mapping of it.
TEST(SysvShmLayout, AttachmentsInsideAnotherOnesRange) {
  auto p = with_segments();
  p.areas = {shm_area(0x10000, 0x11000, 0, 5), shm_area(0x12000, 0x13000, 0, 6)};
  auto atts = shm_attachments(p);  // the second inside the first's unmapped pages: fine
  ASSERT_TRUE(atts) << atts.error().describe();
  ASSERT_EQ(atts->size(), 2u);
  EXPECT_EQ(shm_holes(p, (*atts)[0]),
            (std::vector<std::pair<uint64_t, uint64_t>>{{0x11000, 0x12000}, {0x13000, 0x15000}}));
  p.sysv_shm[1].size = 3 * 4096;  // now its range reaches the first one's mapping at 0x14000
  p.areas = {shm_area(0x10000, 0x11000, 0, 5), shm_area(0x12000, 0x13000, 0, 6),
             shm_area(0x14000, 0x15000, 0x4000, 5)};
  atts = shm_attachments(p);
  ASSERT_FALSE(atts);
  EXPECT_NE(atts.error().describe().find("mapping 0x14000-0x15000 of System V segment 5 lies "
                                         "inside the attachment of segment 6 at 0x12000"),
            std::string::npos)
      << atts.error().describe();
}

}  // namespace
}  // namespace vos::image
