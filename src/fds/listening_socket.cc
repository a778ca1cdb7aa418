// Host side. Listening TCP (IPv4/IPv6) and unix stream/seqpacket sockets: bound again to the
// same address on restore. Connections waiting in the accept queue are lost (docs/limits.md).
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "capture/proc_files.h"
#include "fds/fd_kind.h"
#include "fds/sockaddr.h"

namespace vos::fds {

namespace {

// Whether a program listens on the unix socket at `path` now: /proc/net/unix lists every live
// unix socket of this network namespace with its flags (__SO_ACCEPTCON, 0x10000, once it
// listens) and path. Read rather than connected to, which the listener would see.
bool someone_listens(const std::string& path) {
  auto text = capture::read_text_file("/proc/net/unix");
  if (!text) {
    return false;
  }
  size_t pos = text->find('\n');  // header
  while (pos != std::string::npos && pos + 1 < text->size()) {
    size_t eol = text->find('\n', pos + 1);
    std::string line =
        text->substr(pos + 1, eol == std::string::npos ? std::string::npos : eol - pos - 1);
    pos = eol;
    unsigned long flags = 0;
    char sock_path[4096] = {};
    // Num RefCount Protocol Flags Type St Inode Path
    if (std::sscanf(line.c_str(), "%*s %*s %*s %lx %*s %*s %*s %4095s", &flags, sock_path) == 2 &&
        (flags & 0x10000) != 0 && path == sock_path) {
      return true;
    }
  }
  return false;
}

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
  Status check_restorable(const image::FdState& f, const RestorePolicy& policy) const override {
    if (unix_ && !f.sockaddr.empty() && f.sockaddr[0] == '/' && !policy.take_unix_sockets &&
        someone_listens(f.sockaddr)) {
      return user_error(
          "fd {}: cannot listen again on {}: a running program listens there (is the original "
          "still running?); stop it, or restore with --take-unix-sockets to bind the path anyway "
          "(new clients then reach only the restored copy)",
          f.fd, f.sockaddr);
    }
    return {};
  }
  Result<int> recreate(FdRecreate& r, const image::FdState& f) const override {
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
      // The dead original's socket file goes; a live one's only when asked (check_restorable
      // refused that before anything was created, but a program may have started since).
      if (::lstat(f.sockaddr.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        if (!r.policy.take_unix_sockets && someone_listens(f.sockaddr)) {
          ::close(s);
          return user_error("cannot listen again on {}: a running program listens there",
                            f.sockaddr);
        }
        ::unlink(f.sockaddr.c_str());
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
