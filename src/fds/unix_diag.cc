// Host side.
#include "fds/unix_diag.h"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "base/unique_fd.h"

namespace vos::fds {

Result<UnixSocketDiag> diag_unix_socket(ino_t ino) {
  UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) {
    return sys_error("opening a sock_diag netlink socket");
  }
  struct {
    nlmsghdr nlh;
    unix_diag_req req;
  } q{};
  q.nlh.nlmsg_len = sizeof q;
  q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  q.nlh.nlmsg_flags = NLM_F_REQUEST;
  q.req.sdiag_family = AF_UNIX;
  q.req.udiag_states = ~0u;
  q.req.udiag_ino = static_cast<uint32_t>(ino);
  q.req.udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
  q.req.udiag_cookie[0] = q.req.udiag_cookie[1] = ~0u;  // INET_DIAG_NOCOOKIE: any cookie
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &q, sizeof q, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) !=
      static_cast<ssize_t>(sizeof q)) {
    return sys_error("asking sock_diag about unix socket {}", ino);
  }
  alignas(nlmsghdr) char buf[8192];
  ssize_t n = ::recv(nl.get(), buf, sizeof buf, 0);
  if (n < 0) {
    return sys_error("reading sock_diag's answer about unix socket {}", ino);
  }
  auto* h = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(h, static_cast<unsigned>(n))) {
    return user_error("sock_diag: short answer about unix socket {}", ino);
  }
  if (h->nlmsg_type == NLMSG_ERROR) {
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    return Error(-e->error, fmt::format("sock_diag: unix socket {}", ino));
  }
  const auto* msg = static_cast<const unix_diag_msg*>(NLMSG_DATA(h));
  UnixSocketDiag out;
  out.state = msg->udiag_state;
  int left = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *msg));
  for (auto* a = reinterpret_cast<const nlattr*>(msg + 1);
       left >= static_cast<int>(sizeof *a) && a->nla_len >= sizeof *a && a->nla_len <= left;) {
    const char* data = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
    if (a->nla_type == UNIX_DIAG_PEER && a->nla_len >= NLA_HDRLEN + sizeof(uint32_t)) {
      std::memcpy(&out.peer_ino, data, sizeof out.peer_ino);
    } else if (a->nla_type == UNIX_DIAG_RQLEN &&
               a->nla_len >= NLA_HDRLEN + sizeof(unix_diag_rqlen)) {
      unix_diag_rqlen q{};
      std::memcpy(&q, data, sizeof q);
      out.queued_bytes = q.udiag_rqueue;
    } else if (a->nla_type == UNIX_DIAG_SHUTDOWN && a->nla_len >= NLA_HDRLEN + 1) {
      out.shutdown = static_cast<uint8_t>(*data);
    }
    int step = static_cast<int>(NLA_ALIGN(a->nla_len));
    left -= step;
    a = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(a) + step);
  }
  return out;
}

}  // namespace vos::fds
