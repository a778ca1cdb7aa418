// Host side. A connected unix stream or seqpacket socket whose peer is gone: one end of a
// socketpair whose other end was closed, with nothing left to read. Every JVM that uses NIO has
// one (its "pre-close" descriptor, dup2'd over sockets it closes). Nothing can reach it any
// more: reads give end-of-file, writes EPIPE. Recreated the same way: a socketpair, the other end
// closed at once.
#include <linux/net.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fds/fd_kind.h"

namespace vos::fds {

namespace {

constexpr uint8_t kTcpEstablished = 1;  // the kernel's unix sockets use TCP's state numbers

class UnixOrphanSocket final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kUnixOrphan; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    if (!f.socket || f.socket->domain != AF_UNIX || f.socket->listening || !f.socket->unix_diag) {
      return false;
    }
    int type = f.socket->type;
    const auto& d = *f.socket->unix_diag;
    return (type == SOCK_STREAM || type == SOCK_SEQPACKET) && d.state == kTcpEstablished &&
           d.peer_ino == 0 && f.socket->address.empty();
  }
  Status check(const FdProbe& f, const ProbeSet&) const override {
    if (f.socket->unix_diag->queued_bytes != 0) {
      return user_error(
          "fd {}: unix socket whose peer is closed still holds {} unread byte(s): not "
          "supported yet",
          f.fd, f.socket->unix_diag->queued_bytes);
    }
    return {};
  }
  Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink&,
                 image::FdState& out) const override {
    if (auto ok = check(f, all); !ok) {  // probed again at the freeze: it may have read some
      return ok;
    }
    out.sock_type = f.socket->type;
    return {};
  }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    int sv[2];
    if (::socketpair(AF_UNIX, f.sock_type | SOCK_CLOEXEC, 0, sv) != 0) {
      return sys_error("socketpair for a unix socket whose peer is closed");
    }
    ::close(sv[1]);
    return sv[0];
  }
};

}  // namespace

const FdKindHandler& unix_orphan_socket_kind() {
  static const UnixOrphanSocket k;
  return k;
}

}  // namespace vos::fds
