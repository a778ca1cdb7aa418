// Host side. Listening TCP (IPv4/IPv6) and unix stream/seqpacket sockets: bound again to the
// same address on restore. Connections waiting in the accept queue are lost (docs/limits.md).
#include <sys/socket.h>
#include <unistd.h>

#include "fds/fd_kind.h"
#include "fds/sockaddr.h"

namespace vos::fds {

namespace {

class ListeningSocket final : public FdKindHandler {
 public:
  explicit ListeningSocket(bool unix_domain) : unix_(unix_domain) {}
  image::FdKind kind() const override {
    return unix_ ? image::FdKind::kUnixListen : image::FdKind::kTcpListen;
  }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    if (!f.socket || !f.socket->listening) {
      return false;
    }
    int d = f.socket->domain;
    return unix_ ? d == AF_UNIX : (d == AF_INET || d == AF_INET6);
  }
  Status capture(const FdProbe& f, const ProbeSet&, CaptureSink&,
                 image::FdState& out) const override {
    if (f.socket->address.empty()) {
      return user_error("fd {}: cannot read the address of the listening socket", f.fd);
    }
    out.sockaddr = f.socket->address;
    out.sock_type = f.socket->type;
    out.backlog = 128;
    return {};
  }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    auto addr = parse_sockaddr(f.sockaddr);
    if (!addr) {
      return std::move(addr).error();
    }
    int s = ::socket(addr->family, f.sock_type | SOCK_CLOEXEC, 0);
    if (s < 0) {
      return sys_error("socket");
    }
    int one = 1;
    ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->family == AF_UNIX && f.sockaddr[0] == '/') {
      struct stat st {};
      if (::lstat(f.sockaddr.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        ::unlink(f.sockaddr.c_str());  // the dead original's socket file
      }
    }
    if (::bind(s, reinterpret_cast<sockaddr*>(&addr->ss), addr->len) != 0) {
      int e = errno;
      ::close(s);
      return Error(e, fmt::format("cannot listen again on {} (is the original program still "
                                  "running?)",
                                  f.sockaddr));
    }
    if (::listen(s, f.backlog) != 0) {
      ::close(s);
      return sys_error("listen on {}", f.sockaddr);
    }
    return s;
  }

 private:
  bool unix_;
};

}  // namespace

const FdKindHandler& tcp_listen_kind() {
  static const ListeningSocket k(false);
  return k;
}

const FdKindHandler& unix_listen_kind() {
  static const ListeningSocket k(true);
  return k;
}

}  // namespace vos::fds
