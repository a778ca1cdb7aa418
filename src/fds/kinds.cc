// Host side. The table of descriptor kinds, in the order they are asked: the first whose
// matches() takes a descriptor handles it. Devices known by path come before stdio (a /dev/null
// on fd 0 is reopened, not shared), listening sockets before stdio (a listening socket passed as
// fd 0 by inetd-style starters is rebound), internal pipes before stdio, FIFOs after it (one the
// program was started with on its stdio stays its starter's).
#include <unistd.h>

#include "fds/anon_inode.h"
#include "fds/fd_kind.h"

namespace vos::fds {

const FdKindHandler& console_kind();
const FdKindHandler& char_device_kind();
const FdKindHandler& memfd_kind();
const FdKindHandler& regular_file_kind();
const FdKindHandler& directory_kind();
const FdKindHandler& pipe_kind();
const FdKindHandler& tcp_listen_kind();
const FdKindHandler& unix_listen_kind();
const FdKindHandler& unix_orphan_socket_kind();
const FdKindHandler& unix_pair_socket_kind();
const FdKindHandler& stdio_kind();
const FdKindHandler& fifo_kind();
const FdKindHandler& eventfd_kind();
const FdKindHandler& epoll_kind();
const FdKindHandler& timerfd_kind();
const FdKindHandler& signalfd_kind();

const std::vector<const FdKindHandler*>& fd_kinds() {
  static const std::vector<const FdKindHandler*> kinds = {
      &console_kind(),          &char_device_kind(), &memfd_kind(),
      &regular_file_kind(),     &directory_kind(),   &pipe_kind(),
      &tcp_listen_kind(),       &unix_listen_kind(), &unix_orphan_socket_kind(),
      &unix_pair_socket_kind(), &stdio_kind(),       &fifo_kind(),
      &eventfd_kind(),          &epoll_kind(),       &timerfd_kind(),
      &signalfd_kind()};
  return kinds;
}

const FdKindHandler* handler_for(image::FdKind kind) {
  for (const auto* h : fd_kinds()) {
    if (h->kind() == kind || h->also_restores(kind)) {
      return h;
    }
  }
  return nullptr;
}

Result<const FdKindHandler*> handler_of(const image::FdState& f) {
  if (const auto* h = handler_for(f.kind)) {
    return h;
  }
  return user_error("fd {}: this vos cannot recreate kind {}", f.fd, image::fd_kind_name(f.kind));
}

Error unsupported_fd(const FdProbe& f) {
  if (f.link_starts_with("pipe:")) {
    return user_error("fd {}: pipe shared with another process is not supported yet", f.fd);
  }
  if (f.type() == S_IFSOCK) {
    return user_error("fd {}: connected socket is not supported yet", f.fd);
  }
  if (f.type() == S_IFCHR) {
    return user_error("fd {}: device {} is not supported yet", f.fd, f.link);
  }
  if (std::string name = anon_inode_name(f); !name.empty()) {
    return user_error("fd {}: {} is not supported yet", f.fd, name);
  }
  return user_error("fd {}: {} is not supported yet", f.fd, f.link);
}

Status write_all(int fd, std::string_view data) {
  const char* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys_error("writing");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

}  // namespace vos::fds
