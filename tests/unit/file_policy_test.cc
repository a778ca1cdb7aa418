// What `vos restore --files=check|rewind|keep` decides for a file the program had open, tried on
// real files; and the pieces deleted files are recreated with.
#include "fds/file_policy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "fds/fd_kind.h"
#include "fds/file_content.h"
#include "test_files.h"

namespace vos::fds {
namespace {

using Files = RestorePolicy::Files;
using vos::testing::read_file;
using vos::testing::write_file;

class FilePolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/vos-file-policy-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/out.txt";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The program's fd 3 on path_ as a checkpoint records it: `content` was its size then; hashed
  // if it was open for writing; the content kept if `stored` (--with-files).
  image::FdState record(const std::string& content, int flags, bool stored = false) {
    write_file(path_, content);
    image::FdState f;
    f.fd = 3;
    f.path = path_;
    f.flags = flags;
    f.size = content.size();
    f.mode = 0640;
    struct stat st {};
    EXPECT_EQ(::stat(path_.c_str(), &st), 0);
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    if ((flags & O_ACCMODE) != O_RDONLY) {
      f.content_hash = hash_hex(content);
    }
    if (stored) {
      f.data = {blobs_.size(), content.size()};
      blobs_ += content;
    }
    proc_.fds = {f};
    return f;
  }
  RestorePolicy policy(Files files) {
    RestorePolicy p;
    p.files = files;
    p.proc = &proc_;
    p.blobs = blobs_;
    return p;
  }
  std::string check(const image::FdState& f, Files files) {
    auto st = check_file(f, policy(files));
    return st ? "" : st.error().describe();
  }

  std::string dir_, path_, blobs_;
  image::ProcessImage proc_;
};

TEST_F(FilePolicyTest, CheckRefusesAFileThatChangedSizeNamingTheOtherOptions) {
  auto f = record("line 1\n", O_WRONLY);
  EXPECT_EQ(check(f, Files::kCheck), "");
  write_file(path_, "line 1\nline 2\n");
  std::string why = check(f, Files::kCheck);
  EXPECT_NE(why.find(path_ + " changed size since the checkpoint (was 7 bytes, now 14)"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("--files=rewind"), std::string::npos) << why;
  EXPECT_NE(why.find("--files=keep"), std::string::npos) << why;
  EXPECT_EQ(check(f, Files::kKeep), "");
  std::filesystem::remove(path_);
  EXPECT_NE(check(f, Files::kKeep).find("is gone"), std::string::npos);
  EXPECT_NE(check(f, Files::kCheck).find("is gone"), std::string::npos);
}

TEST_F(FilePolicyTest, RewindCutsBackAFileThatOnlyGrew) {
  auto f = record("step 0\nstep 1\n", O_WRONLY | O_APPEND);
  write_file(path_, "step 0\nstep 1\nstep 2\nstep 3\n");
  EXPECT_EQ(check(f, Files::kRewind), "");
  ASSERT_TRUE(rewind_file(f, policy(Files::kRewind)));
  EXPECT_EQ(read_file(path_), "step 0\nstep 1\n");
  // Nothing to do the second time; a file of the same size and content is left as it is.
  EXPECT_EQ(check(f, Files::kRewind), "");
  ASSERT_TRUE(rewind_file(f, policy(Files::kRewind)));
  EXPECT_EQ(read_file(path_), "step 0\nstep 1\n");
}

TEST_F(FilePolicyTest, RewindWithoutTheContentRefusesAnythingButGrowth) {
  auto f = record("counter=41\n", O_RDWR);
  write_file(path_, "counter=42\n");  // overwritten in place, same size
  std::string why = check(f, Files::kRewind);
  EXPECT_NE(why.find("its first 11 bytes changed since the checkpoint"), std::string::npos) << why;
  EXPECT_NE(why.find("--with-files"), std::string::npos) << why;
  EXPECT_NE(why.find("--files=keep"), std::string::npos) << why;
  write_file(path_, "counter=41\nmore");
  EXPECT_EQ(check(f, Files::kRewind), "");
  write_file(path_, "X" + std::string("ounter=41\nmore"));  // grew, but not only at its end
  EXPECT_NE(check(f, Files::kRewind).find("changed since the checkpoint"), std::string::npos);
  write_file(path_, "count");
  why = check(f, Files::kRewind);
  EXPECT_NE(why.find("shrank since the checkpoint (was 11 bytes, now 5)"), std::string::npos)
      << why;
  std::filesystem::remove(path_);
  EXPECT_NE(check(f, Files::kRewind).find("is gone"), std::string::npos);
  // Refused means untouched.
  write_file(path_, "counter=42\n");
  ASSERT_FALSE(check_file(f, policy(Files::kRewind)));
  EXPECT_EQ(read_file(path_), "counter=42\n");
}

TEST_F(FilePolicyTest, RewindWritesBackTheContentTheImageHolds) {
  auto f = record("counter=41\n", O_RDWR, /*stored=*/true);
  write_file(path_, "counter=99\nand more");
  EXPECT_EQ(check(f, Files::kRewind), "");
  ASSERT_TRUE(rewind_file(f, policy(Files::kRewind)));
  EXPECT_EQ(read_file(path_), "counter=41\n");
  write_file(path_, "cou");
  ASSERT_TRUE(rewind_file(f, policy(Files::kRewind)));
  EXPECT_EQ(read_file(path_), "counter=41\n");
  // Gone: written back, with its mode.
  std::filesystem::remove(path_);
  EXPECT_EQ(check(f, Files::kRewind), "");
  EXPECT_NE(check(f, Files::kCheck).find("--files=rewind writes it back"), std::string::npos);
  ASSERT_TRUE(rewind_file(f, policy(Files::kRewind)));
  EXPECT_EQ(read_file(path_), "counter=41\n");
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // Not with its directory gone.
  std::filesystem::remove_all(dir_);
  EXPECT_NE(check(f, Files::kRewind).find("its directory " + dir_ + " is gone too"),
            std::string::npos);
  std::filesystem::create_directory(dir_);
}

TEST_F(FilePolicyTest, RewindDoesNotUndoWhatOthersWroteToAFileTheProgramOnlyRead) {
  auto f = record("config\n", O_RDONLY);
  EXPECT_TRUE(f.content_hash.empty());
  EXPECT_EQ(check(f, Files::kRewind), "");
  write_file(path_, "config\nedited\n");
  std::string why = check(f, Files::kRewind);
  EXPECT_NE(why.find("did not have it open for writing"), std::string::npos) << why;
  EXPECT_NE(why.find("--files=keep"), std::string::npos) << why;
  ASSERT_TRUE(rewind_file(f, policy(Files::kRewind)));
  EXPECT_EQ(read_file(path_), "config\nedited\n");
}

TEST_F(FilePolicyTest, TheLowestFdOfAFileKeepsItsRecord) {
  auto w = record("data", O_WRONLY);
  image::FdState ro = w;
  ro.fd = 3;
  ro.flags = O_RDONLY;
  ro.content_hash.clear();
  w.fd = 5;
  image::FdState dup = ro;
  dup.fd = 4;
  dup.dup_of = 3;
  image::FdState other;
  other.fd = 6;
  other.path = dir_ + "/other";
  other.dev = w.dev;
  other.ino = w.ino + 1;
  proc_.fds = {ro, dup, w, other};
  EXPECT_EQ(file_record(proc_, proc_.fds[2]).fd, 3);
  EXPECT_EQ(file_record(proc_, proc_.fds[1]).fd, 3);
  EXPECT_EQ(file_record(proc_, proc_.fds[3]).fd, 6);
  EXPECT_TRUE(file_written(proc_, proc_.fds[0]));
  EXPECT_FALSE(file_written(proc_, proc_.fds[3]));
  // Images from before devices were recorded: every fd is its own record.
  image::FdState old = ro;
  old.dev = old.ino = 0;
  EXPECT_EQ(&file_record(proc_, old), &old);
}

TEST_F(FilePolicyTest, DeletedFilesNeedTheirDirectoryAndAreRecreatedUnnamedThere) {
  const FdKindHandler* kind = handler_for(image::FdKind::kFile);
  ASSERT_NE(kind, nullptr);
  blobs_ = "tmp data";
  image::FdState f;
  f.fd = 3;
  f.deleted = true;
  f.path = dir_ + "/sub/x.tmp (deleted)";
  f.size = 8;
  f.data = {0, 8};
  proc_.fds = {f};
  auto st = kind->check_restorable(f, policy(Files::kCheck));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().describe().find("but " + dir_ + "/sub is gone"), std::string::npos)
      << st.error().describe();
  std::filesystem::create_directory(dir_ + "/sub");
  EXPECT_TRUE(kind->check_restorable(f, policy(Files::kRewind)));
  f.size = 9;  // content does not match the size: a damaged image
  EXPECT_FALSE(kind->check_restorable(f, policy(Files::kCheck)));

  auto made = create_unnamed(dir_ + "/sub", O_RDWR);
  ASSERT_TRUE(made) << made.error().describe();
  struct stat s {};
  ASSERT_EQ(::fstat(made->get(), &s), 0);
  EXPECT_EQ(s.st_nlink, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/sub"));
  ASSERT_TRUE(write_all_at(made->get(), "unnamed", 0));
  auto h = hash_prefix(made->get(), 7);
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, hash_hex("unnamed"));
  EXPECT_FALSE(hash_prefix(made->get(), 8));  // shorter than asked
  EXPECT_EQ(without_deleted_suffix(f.path), dir_ + "/sub/x.tmp");
  EXPECT_EQ(directory_of("/x"), "/");
}

}  // namespace
}  // namespace vos::fds
