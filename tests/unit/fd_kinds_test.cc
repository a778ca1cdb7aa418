// The descriptor kinds' table (src/fds/kinds.cc) and what its kinds read from /proc, tried on
// this test process's own descriptors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "fds/fd_kind.h"
#include "fds/sockaddr.h"

namespace vos::fds {
namespace {

TEST(FdKinds, EachKindHasOneHandlerThatRestoresIt) {
  std::set<image::FdKind> seen;
  for (const auto* h : fd_kinds()) {
    EXPECT_TRUE(seen.insert(h->kind()).second) << image::fd_kind_name(h->kind());
    EXPECT_EQ(handler_for(h->kind()), h);
  }
  // Images from before /dev/null became one of the character devices still restore.
  EXPECT_EQ(handler_for(image::FdKind::kDevNull), handler_for(image::FdKind::kCharDevice));
}

const FdKindHandler* kind_taking(const ProbeSet& all, int fd) {
  for (const auto& f : all.fds) {
    if (f.fd == fd) {
      for (const auto* h : fd_kinds()) {
        if (h->matches(f, all)) {
          return h;
        }
      }
    }
  }
  return nullptr;
}

TEST(FdKinds, TheProgramsVosPtyIsAConsoleAnotherTtyIsNot) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(slave, &st), 0);
  auto mine = probe_fds(::getpid(), "", st.st_rdev);
  ASSERT_TRUE(mine) << mine.error().describe();
  const auto* h = kind_taking(*mine, slave);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->kind(), image::FdKind::kConsole);
  // Not the program's vos pty (some other terminal it opened): not a console.
  auto other = probe_fds(::getpid(), "", st.st_rdev + 1);
  ASSERT_TRUE(other);
  h = kind_taking(*other, slave);
  EXPECT_TRUE(h == nullptr || h->kind() != image::FdKind::kConsole);
  ::close(slave);
  ::close(master);
}

TEST(FdKinds, OwnDescriptorsAreRecognised) {
  int urandom = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  int ev = ::eventfd(7, EFD_CLOEXEC);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  int s[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  auto all = probe_fds(::getpid());
  ASSERT_TRUE(all) << all.error().describe();
  auto kind_of = [&](int fd) {
    const auto* h = kind_taking(*all, fd);
    return h == nullptr ? std::string("none") : std::string(image::fd_kind_name(h->kind()));
  };
  EXPECT_EQ(kind_of(urandom), "char-device");
  EXPECT_EQ(kind_of(ev), "eventfd");
  EXPECT_EQ(kind_of(p[0]), "pipe");
  EXPECT_EQ(kind_of(s[0]), "unix-pair");  // both ends are the program's
  for (const auto& f : all->fds) {
    if (f.fd == s[0]) {
      EXPECT_NE(unsupported_fd(f).message().find("connected socket"), std::string::npos);
    }
  }
  for (int fd : {urandom, ev, p[0], p[1], s[0], s[1]}) {
    ::close(fd);
  }
}

// One end of a socketpair whose other end is closed is a kind of its own (nothing can reach it),
// refused while it still holds unread data; with its peer open it is a socketpair, kept when
// the program holds the peer too (here it does).
TEST(FdKinds, SocketWhosePeerIsClosed) {
  int alive[2], orphan[2], unread[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, alive), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, orphan), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, unread), 0);
  ASSERT_EQ(::write(unread[1], "ab", 2), 2);
  ::close(orphan[1]);
  ::close(unread[1]);
  auto all = probe_fds(::getpid());
  ASSERT_TRUE(all) << all.error().describe();
  auto probe_of = [&](int fd) -> const FdProbe& {
    for (const auto& f : all->fds) {
      if (f.fd == fd) {
        return f;
      }
    }
    ADD_FAILURE() << "fd " << fd << " not probed";
    return all->fds.front();
  };
  const auto& o = probe_of(orphan[0]);
  ASSERT_TRUE(o.socket && o.socket->unix_diag);
  EXPECT_EQ(o.socket->unix_diag->peer_ino, 0u);
  EXPECT_NE(probe_of(alive[0]).socket->unix_diag->peer_ino, 0u);
  EXPECT_EQ(probe_of(unread[0]).socket->unix_diag->queued_bytes, 2u);
  const auto* h = kind_taking(*all, orphan[0]);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->kind(), image::FdKind::kUnixOrphan);
  ASSERT_NE(kind_taking(*all, alive[0]), nullptr);
  EXPECT_EQ(kind_taking(*all, alive[0])->kind(), image::FdKind::kUnixPair);
  const auto* u = kind_taking(*all, unread[0]);
  ASSERT_EQ(u, h);
  auto refused = u->check(probe_of(unread[0]), *all);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("2 unread byte"), std::string::npos);
  for (int fd : {alive[0], alive[1], orphan[0], unread[0]}) {
    ::close(fd);
  }
}

// A deleted file's content is captured (it exists nowhere else), with its record on the lowest
// of its fds; a named file open for writing is left to be hashed later, and stored only with
// --with-files.
TEST(FdKinds, DeletedAndWrittenFilesAreCapturedAsThePolicySays) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  std::string gone = dir + "/vos-fd-kinds-" + std::to_string(::getpid()) + ".tmp";
  std::string named = gone + ".named";
  int del = ::open(gone.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int del2 = ::open(gone.c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(named.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_TRUE(del >= 0 && del2 >= 0 && out >= 0);
  ASSERT_EQ(::write(del, "deleted!", 8), 8);
  ASSERT_EQ(::write(out, "output", 6), 6);
  ASSERT_EQ(::unlink(gone.c_str()), 0);
  auto all = probe_fds(::getpid());
  ASSERT_TRUE(all) << all.error().describe();
  auto probe = [&](int fd) -> const FdProbe& {
    for (const auto& f : all->fds) {
      if (f.fd == fd) {
        return f;
      }
    }
    ADD_FAILURE() << "fd " << fd << " not probed";
    return all->fds.front();
  };
  const FdKindHandler* file = kind_taking(*all, del);
  ASSERT_EQ(file, handler_for(image::FdKind::kFile));
  FileContentPolicy plain, with_files;
  with_files.with_files = true;
  EXPECT_EQ(file->stored_bytes(probe(del), *all, plain), 8u);
  EXPECT_EQ(file->stored_bytes(probe(del2), *all, plain), 0u);  // the record is with `del`
  EXPECT_EQ(file->stored_bytes(probe(out), *all, plain), 0u);
  EXPECT_EQ(file->stored_bytes(probe(out), *all, with_files), 6u);

  std::string blobs;
  CaptureSink sink;
  sink.add_blob = [&](const void* d, size_t n) {
    image::BlobRef r{blobs.size(), n};
    blobs.append(static_cast<const char*>(d), n);
    return r;
  };
  std::map<int, std::string> contents;
  sink.file_content = [&](int fd, size_t n) {
    contents[fd].resize(n);
    return contents[fd].data();
  };
  image::FdState d, d2, o;
  ASSERT_TRUE(file->capture(probe(del), *all, sink, d));
  ASSERT_TRUE(file->capture(probe(del2), *all, sink, d2));
  ASSERT_TRUE(file->capture(probe(out), *all, sink, o));
  EXPECT_TRUE(d.deleted && d2.deleted && !o.deleted);
  EXPECT_EQ(contents[del], "deleted!");
  EXPECT_EQ(d.data.size, 8u);
  EXPECT_EQ(contents.count(out), 0u);
  EXPECT_EQ(d2.data.size, 0u);
  EXPECT_EQ(d.ino, 0u);  // (set by the driver, not the kind)
  EXPECT_EQ(d.mode, 0600u);
  EXPECT_EQ(o.data.size, 0u);
  ASSERT_EQ(sink.late_hashes.size(), 1u);  // the named file, hashed once the program runs
  EXPECT_EQ(sink.late_hashes[0].fd, out);
  EXPECT_TRUE(sink.late_hashes[0].file.valid());
  EXPECT_EQ(sink.late_hashes[0].size, 6u);
  ::unlink(named.c_str());
  for (int fd : {del, del2, out}) {
    ::close(fd);
  }
}

TEST(Sockaddr, FormatsAndParsesEveryFamily) {
  for (const std::string a : {"127.0.0.1:8080", "[::1]:80", "@abstract-name", "/tmp/x.sock"}) {
    auto p = parse_sockaddr(a);
    ASSERT_TRUE(p) << a;
    EXPECT_EQ(format_sockaddr(p->ss, p->len), a);
  }
  EXPECT_FALSE(parse_sockaddr("no-port"));
  EXPECT_FALSE(parse_sockaddr("300.1.1.1:80"));
}

}  // namespace
}  // namespace vos::fds
