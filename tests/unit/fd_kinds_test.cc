// The descriptor kinds' table (src/fds/kinds.cc) and what its kinds read from /proc, tried on
// this test process's own descriptors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

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
  EXPECT_EQ(kind_of(s[0]), "none");  // connected sockets: not yet
  for (const auto& f : all->fds) {
    if (f.fd == s[0]) {
      EXPECT_NE(unsupported_fd(f).message().find("connected socket"), std::string::npos);
    }
  }
  for (int fd : {urandom, ev, p[0], p[1], s[0], s[1]}) {
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
