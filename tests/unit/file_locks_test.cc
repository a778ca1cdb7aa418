// File locks: the kernel's lock lines read back, their place in the image (version 4), and the
// restore's side tried on this test process's own descriptors: taking locks that someone else
// holds fails naming the lock, and the final check notices a POSIX lock a close released.
#include "fds/file_locks.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "capture/lock_capture.h"
#include "image/finish_image.h"
#include "image/image_reader.h"
#include "image/image_writer.h"
#include "restore/lock_restore.h"

namespace vos {
namespace {

using image::FileLock;
using image::LockKind;
using image::LockType;

TEST(LockLines, ParsesWhatTheKernelWrites) {
  auto l = fds::parse_lock_line("\t1: POSIX  ADVISORY  WRITE 24519 fe:00:10952838 10 14");
  ASSERT_TRUE(l) << l.error().describe();
  EXPECT_FALSE(l->waiting);
  EXPECT_EQ(l->lock_class, "POSIX");
  EXPECT_EQ(l->mode, "ADVISORY");
  EXPECT_EQ(l->type, "WRITE");
  EXPECT_EQ(l->pid, 24519);
  EXPECT_EQ(l->dev_ino, "fe:00:10952838");
  EXPECT_EQ(l->start, 10u);
  ASSERT_TRUE(l->end);
  EXPECT_EQ(*l->end, 14u);

  auto w = fds::parse_lock_line("3: -> OFDLCK ADVISORY  READ -1 08:01:77 20 EOF");
  ASSERT_TRUE(w) << w.error().describe();
  EXPECT_TRUE(w->waiting);
  EXPECT_EQ(w->lock_class, "OFDLCK");
  EXPECT_EQ(w->pid, -1);
  EXPECT_FALSE(w->end);

  EXPECT_FALSE(fds::parse_lock_line("garbage"));
  EXPECT_FALSE(fds::parse_lock_line("1: POSIX ADVISORY WRITE 1 fe:00:1 x 14"));
  EXPECT_FALSE(fds::parse_lock_line("1: POSIX ADVISORY"));
}

TEST(LockLines, BecomeImageLocksOrRefusals) {
  auto posix =
      fds::image_lock(*fds::parse_lock_line("1: POSIX  ADVISORY  WRITE 5 fe:00:9 100 199"), 3);
  ASSERT_TRUE(posix) << posix.error().describe();
  EXPECT_EQ(posix->kind, LockKind::kPosix);
  EXPECT_EQ(posix->type, LockType::kWrite);
  EXPECT_EQ(posix->start, 100u);
  EXPECT_EQ(posix->len, 100u);
  EXPECT_EQ(image::describe_lock(*posix), "POSIX write lock on bytes 100-199");

  auto ofd =
      fds::image_lock(*fds::parse_lock_line("1: OFDLCK ADVISORY  READ -1 fe:00:9 20 EOF"), 3);
  ASSERT_TRUE(ofd);
  EXPECT_EQ(ofd->kind, LockKind::kOfd);
  EXPECT_EQ(ofd->len, 0u);
  EXPECT_EQ(image::describe_lock(*ofd), "OFD read lock from byte 20 to EOF");

  auto fl = fds::image_lock(*fds::parse_lock_line("1: FLOCK  ADVISORY  WRITE 5 fe:00:9 0 EOF"), 3);
  ASSERT_TRUE(fl);
  EXPECT_EQ(fl->kind, LockKind::kFlock);
  EXPECT_EQ(image::describe_lock(*fl), "flock LOCK_EX");

  auto lease =
      fds::image_lock(*fds::parse_lock_line("1: LEASE  ACTIVE    READ 5 fe:00:9 0 EOF"), 7);
  ASSERT_FALSE(lease);
  EXPECT_NE(lease.error().message().find("fd 7: lease (F_SETLEASE) read"), std::string::npos)
      << lease.error().message();
  auto breaking =
      fds::image_lock(*fds::parse_lock_line("1: LEASE  BREAKING  UNLCK 5 fe:00:9 0 EOF"), 7);
  EXPECT_FALSE(breaking);
  EXPECT_FALSE(
      fds::image_lock(*fds::parse_lock_line("1: UNKNOWN UNKNOWN  READ 5 fe:00:9 0 EOF"), 7));
}

class LockFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vos-locks-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (int fd : fds_) {
      ::close(fd);
    }
    std::filesystem::remove_all(dir_);
  }
  int open_file(const std::string& name, int flags) {
    int fd = ::open((dir_ + "/" + name).c_str(), flags | O_CREAT | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0);
    fds_.push_back(fd);
    return fd;
  }
  image::FdState state(int fd, const std::string& name, int flags, std::vector<FileLock> locks) {
    image::FdState f;
    f.fd = fd;
    f.path = dir_ + "/" + name;
    f.flags = flags;
    f.locks = std::move(locks);
    return f;
  }
  // A child process holding a write lock (POSIX) on `start`..`start+len-1` of `name` until
  // `release` is written to; returns its pid.
  pid_t hold_elsewhere(const std::string& name, off_t start, off_t len, int release[2]) {
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    EXPECT_EQ(::pipe(release), 0);
    pid_t child = ::fork();
    if (child == 0) {
      int fd = ::open((dir_ + "/" + name).c_str(), O_RDWR);
      struct flock q {};
      q.l_type = F_WRLCK;
      q.l_whence = SEEK_SET;
      q.l_start = start;
      q.l_len = len;
      char c = ::fcntl(fd, F_SETLK, &q) == 0 ? 'y' : 'n';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(release[0], &c, 1);
      ::_exit(0);
    }
    char c = 0;
    EXPECT_EQ(::read(ready[0], &c, 1), 1);
    EXPECT_EQ(c, 'y');
    ::close(ready[0]);
    ::close(ready[1]);
    return child;
  }
  std::string dir_;
  std::vector<int> fds_;
};

TEST_F(LockFiles, OwnLocksAreCapturedFromFdinfo) {
  int a = open_file("a", O_RDWR);
  int b = open_file("b", O_RDONLY);
  int c = open_file("c", O_RDONLY);
  struct flock q {};
  q.l_type = F_WRLCK;
  q.l_whence = SEEK_SET;
  q.l_start = 10;
  q.l_len = 5;
  ASSERT_EQ(::fcntl(a, F_SETLK, &q), 0);
  q.l_type = F_RDLCK;
  q.l_start = 0;
  q.l_len = 0;
  ASSERT_EQ(::fcntl(b, F_OFD_SETLK, &q), 0);
  ASSERT_EQ(::flock(c, LOCK_SH), 0);
  auto all = fds::probe_fds(::getpid());
  ASSERT_TRUE(all) << all.error().describe();
  auto locks_of = [&](int fd) {
    for (const auto& f : all->fds) {
      if (f.fd == fd) {
        auto l = capture::capture_fd_locks(f, image::FdKind::kFile);
        EXPECT_TRUE(l) << l.error().describe();
        return l ? *l : std::vector<FileLock>{};
      }
    }
    ADD_FAILURE() << "fd " << fd << " not probed";
    return std::vector<FileLock>{};
  };
  auto la = locks_of(a);
  ASSERT_EQ(la.size(), 1u);
  EXPECT_EQ(image::describe_lock(la[0]), "POSIX write lock on bytes 10-14");
  auto lb = locks_of(b);
  ASSERT_EQ(lb.size(), 1u);
  EXPECT_EQ(image::describe_lock(lb[0]), "OFD read lock from byte 0 to EOF");
  auto lc = locks_of(c);
  ASSERT_EQ(lc.size(), 1u);
  EXPECT_EQ(image::describe_lock(lc[0]), "flock LOCK_SH");
  // A lock on a kind restore does not lock again is refused, naming it.
  for (const auto& f : all->fds) {
    if (f.fd == c) {
      auto refused = capture::capture_fd_locks(f, image::FdKind::kStdio);
      ASSERT_FALSE(refused);
      EXPECT_NE(refused.error().message().find("flock LOCK_SH on"), std::string::npos);
    }
  }
  capture::Obstacles none;
  auto proc_locks = fds::read_proc_locks();
  ASSERT_TRUE(proc_locks);
  capture::check_process_locks(*all, &*proc_locks, none);
  EXPECT_TRUE(none.empty()) << none.items().front();
}

// A POSIX-locked file mapped shared and writable, with only a read-only descriptor left: the
// restore could map it only through a descriptor of its own, whose close releases the locks.
TEST_F(LockFiles, APosixLockedMappingWithoutAFittingFdIsRefused) {
  int rw = ::open((dir_ + "/m").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(rw, 0);
  ASSERT_EQ(::ftruncate(rw, 4096), 0);
  void* m = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
  ASSERT_NE(m, MAP_FAILED);
  ::close(rw);
  int ro = open_file("m", O_RDONLY);
  struct flock q {};
  q.l_type = F_RDLCK;
  q.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(ro, F_SETLK, &q), 0);
  auto all = fds::probe_fds(::getpid());
  ASSERT_TRUE(all);
  capture::Obstacles found;
  capture::check_process_locks(*all, nullptr, found);
  ::munmap(m, 4096);
  ASSERT_FALSE(found.empty());
  EXPECT_NE(found.items().front().find(fmt::format("fd {}: {}/m holds POSIX locks", ro, dir_)),
            std::string::npos)
      << found.items().front();
  EXPECT_NE(found.items().front().find("none is open read-write"), std::string::npos);
}

// An flock on an open file description that only a mapping keeps: no fdinfo shows it, only
// /proc/locks as read once the program is frozen (the checkpoint reads it right after the freeze).
TEST_F(LockFiles, ALockHeldThroughNoDescriptorIsRefusedOnceFrozen) {
  int fd = ::open((dir_ + "/k").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  void* m = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(m, MAP_FAILED);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  ::close(fd);
  auto all = fds::probe_fds(::getpid());
  ASSERT_TRUE(all);
  capture::Obstacles running;
  capture::check_process_locks(*all, nullptr, running);
  EXPECT_TRUE(running.empty()) << running.items().front();
  auto proc_locks = fds::read_proc_locks();
  ASSERT_TRUE(proc_locks);
  capture::Obstacles frozen;
  capture::check_process_locks(*all, &*proc_locks, frozen);
  // The checkpoint keeps such a flock with the mapping of its file instead (the JVM's case).
  capture::Obstacles kept;
  std::vector<capture::MappedLock> mapped;
  capture::check_process_locks(*all, &*proc_locks, kept, &mapped);
  ::munmap(m, 4096);
  ASSERT_FALSE(frozen.empty());
  EXPECT_NE(frozen.items().front().find("not through any descriptor it has open"),
            std::string::npos)
      << frozen.items().front();
  EXPECT_TRUE(kept.empty()) << kept.items().front();
  ASSERT_EQ(mapped.size(), 1u);
  EXPECT_EQ(mapped[0].lock.kind, LockKind::kFlock);
  EXPECT_EQ(mapped[0].lock.type, LockType::kWrite);
}

TEST_F(LockFiles, TakingALockHeldElsewhereFailsNamingIt) {
  int a = open_file("a", O_RDWR);
  int release[2];
  pid_t child = hold_elsewhere("a", 150, 1, release);
  image::ProcessImage p;
  p.fds.push_back(state(a, "a", O_RDWR, {{LockKind::kPosix, LockType::kWrite, 100, 100}}));
  auto early = fds::check_locks_free(p.fds[0]);
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().message().find(fmt::format(
                "POSIX write lock on bytes 100-199 conflicts with process {}'s POSIX write lock "
                "on byte 150",
                child)),
            std::string::npos)
      << early.error().message();
  auto taken = restore::take_file_locks(p);
  ASSERT_FALSE(taken);
  EXPECT_NE(taken.error().message().find(
                "the program's POSIX write lock on bytes 100-199 is held by another process now"),
            std::string::npos)
      << taken.error().message();
  (void)!::write(release[1], "x", 1);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(fds::check_locks_free(p.fds[0]));
  auto again = restore::take_file_locks(p);
  EXPECT_TRUE(again) << again.error().describe();
}

TEST_F(LockFiles, TheLastCheckSeesAPosixLockACloseReleased) {
  int a = open_file("a", O_RDWR);
  int b = open_file("b", O_RDWR);
  image::ProcessImage p;
  p.fds.push_back(state(
      a, "a", O_RDWR,
      {{LockKind::kPosix, LockType::kWrite, 0, 10}, {LockKind::kPosix, LockType::kRead, 20, 0}}));
  p.fds.push_back(
      state(b, "b", O_RDWR,
            {{LockKind::kOfd, LockType::kWrite, 5, 5}, {LockKind::kFlock, LockType::kRead, 0, 0}}));
  ASSERT_TRUE(restore::take_file_locks(p));
  auto held = restore::check_file_locks_held(::getpid(), p);
  EXPECT_TRUE(held) << held.error().describe();

  // The mapping of a POSIX-locked file goes through the program's own descriptor.
  auto locked = restore::PosixLockedFiles::of(p);
  auto fd = locked.fd_for(dir_ + "/a", true);
  ASSERT_TRUE(fd) << fd.error().describe();
  EXPECT_EQ(*fd, a);
  auto other = locked.fd_for(dir_ + "/b", true);  // OFD locks only: a helper is harmless
  ASSERT_TRUE(other);
  EXPECT_EQ(*other, -1);

  // What a helper descriptor's close would do: every POSIX lock on the file is gone.
  ::close(::open((dir_ + "/a").c_str(), O_RDONLY | O_CLOEXEC));
  auto lost = restore::check_file_locks_held(::getpid(), p);
  ASSERT_FALSE(lost);
  EXPECT_NE(lost.error().message().find("wants POSIX read lock from byte 20 to EOF, POSIX write "
                                        "lock on bytes 0-9, holds none"),
            std::string::npos)
      << lost.error().message();
}

// An older vos would restore the program without its locks: an image with locks says version 4.
TEST_F(LockFiles, LocksRoundTripAndNeedVersion4) {
  image::ProcessImage p;
  p.pid = 2;
  image::FdState f;
  f.fd = 3;
  f.path = "/x";
  f.locks = {{LockKind::kOfd, LockType::kWrite, 7, 3}, {LockKind::kFlock, LockType::kRead, 0, 0}};
  p.fds.push_back(f);
  for (bool with_locks : {true, false}) {
    std::string path = dir_ + (with_locks ? "/locks.vos" : "/none.vos");
    auto w = image::ImageWriter::create(path);
    ASSERT_TRUE(w) << w.error().describe();
    image::ProcessImage q = p;
    if (!with_locks) {
      q.fds[0].locks.clear();
    }
    ASSERT_TRUE(image::finish_image(*w, "", q));
    auto r = image::ImageReader::open(path);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->header().version,
              with_locks ? abi::kImageVersionFileLocks : abi::kImageVersionPlain);
    auto back = image::process_from_json(*r->read_section(abi::SectionType::kMeta));
    ASSERT_TRUE(back) << back.error().describe();
    ASSERT_EQ(back->fds.size(), 1u);
    ASSERT_EQ(back->fds[0].locks.size(), with_locks ? 2u : 0u);
    if (with_locks) {
      EXPECT_EQ(image::describe_lock(back->fds[0].locks[0]), "OFD write lock on bytes 7-9");
      EXPECT_EQ(image::describe_lock(back->fds[0].locks[1]), "flock LOCK_SH");
    }
  }
  auto bad = image::process_from_json(
      R"({"fds": [{"fd": 3, "locks": [{"kind": "lease", "type": "read"}]}]})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unknown lock kind \"lease\""), std::string::npos)
      << bad.error().message();
  EXPECT_FALSE(image::process_from_json(
      R"({"fds": [{"fd": 3, "locks": [{"kind": "posix", "type": "rw"}]}]})"));
}

}  // namespace
}  // namespace vos
