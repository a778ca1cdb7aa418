// Host side. One end of a unix socketpair (stream, seqpacket or datagram) whose other end the
// program holds too, in the same process or another of its tree: recreated as one socketpair,
// each end's unread messages written back through the other end so that they wait in the same
// receive queue, in order, with their boundaries. The queue is read at the checkpoint with
// MSG_PEEK (SO_PEEK_OFF walks it, then is put back), never consumed. Descriptors in flight
// (SCM_RIGHTS) are refused. A connection made through a named or abstract listening socket whose
// two ends the program holds is kept the same way (its names are not).
#include <fcntl.h>
#include <linux/net.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "fds/fd_kind.h"
#include "remote/remote_calls.h"

namespace vos::fds {

namespace {

constexpr uint8_t kTcpEstablished = 1;

// "socket:[123]" of the peer: somewhere in the program.
bool peer_inside(uint32_t peer, const ProbeSet& all) {
  std::string link = fmt::format("socket:[{}]", peer);
  for (const auto& o : all.fds) {
    if (o.link == link) {
      return true;
    }
  }
  for (const auto& [l, mode] : all.elsewhere) {
    if (l == link) {
      return true;
    }
  }
  return false;
}

struct Queue {
  std::string bytes;
  std::vector<uint32_t> messages;
};

// Every message waiting in the receive queue of `fd` (a copy of the program's descriptor), left
// where it is.
Result<Queue> peek_queue(int fd, int type, uint32_t queued) {
  Queue q;
  int off = 0;
  if (::setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off) != 0) {
    return sys_error("SO_PEEK_OFF");
  }
  std::vector<char> buf(std::max<uint32_t>(queued, 1) + 65536);
  Status st;
  while (true) {
    char control[CMSG_SPACE(sizeof(int) * 64)];
    iovec iov{buf.data(), buf.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &m, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno != EAGAIN) {
        st = sys_error("reading the queue");
      }
      break;
    }
    bool rights = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        rights = true;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int passed = -1;
          std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          ::close(passed);  // the peek gave us copies of them
        }
      }
    }
    if (rights) {
      st = user_error("descriptors in flight (SCM_RIGHTS) are not supported yet");
      break;
    }
    if (n == 0 && type == SOCK_STREAM) {
      break;  // end of the stream (the peer shut down its writing)
    }
    q.bytes.append(buf.data(), static_cast<size_t>(n));
    q.messages.push_back(static_cast<uint32_t>(n));
    if (type == SOCK_STREAM && q.bytes.size() >= queued) {
      break;
    }
    if (type != SOCK_STREAM && (m.msg_flags & MSG_TRUNC) != 0) {
      st = user_error("a queued message is larger than vos reads");
      break;
    }
    if (q.messages.size() > 100000) {
      st = user_error("too many queued messages");
      break;
    }
  }
  int none = -1;
  ::setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof none);
  if (!st) {
    return std::move(st).error();
  }
  if (type == SOCK_STREAM && !q.bytes.empty()) {
    q.messages = {static_cast<uint32_t>(q.bytes.size())};
  }
  return q;
}

class UnixPairSocket final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kUnixPair; }
  bool matches(const FdProbe& f, const ProbeSet& all) const override {
    // A named or abstract connection (accept()ed from a listener of the program, by a client of
    // the program) is a pair too: recreated as a socketpair, its ends lose their names
    // (docs/limits.md).
    if (!f.socket || f.socket->domain != AF_UNIX || f.socket->listening || !f.socket->unix_diag) {
      return false;
    }
    int type = f.socket->type;
    const auto& d = *f.socket->unix_diag;
    bool connected = type == SOCK_DGRAM || d.state == kTcpEstablished;
    return (type == SOCK_STREAM || type == SOCK_SEQPACKET || type == SOCK_DGRAM) && connected &&
           d.peer_ino != 0 && peer_inside(d.peer_ino, all);
  }
  // Before the freeze too, so that descriptors in flight are named with every other obstacle.
  Status check(const FdProbe& f, const ProbeSet& all) const override {
    auto dup = remote::grab_fd(all.pid, f.fd);
    if (!dup) {
      return std::move(dup).error();
    }
    auto q = peek_queue(dup->get(), f.socket->type, f.socket->unix_diag->queued_bytes);
    if (!q) {
      return std::move(q).error().context(fmt::format("fd {}: unix socketpair", f.fd));
    }
    return {};
  }
  Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink& sink,
                 image::FdState& out) const override {
    out.sock_type = f.socket->type;
    out.sockaddr = f.socket->address;  // informational: the restored end is unnamed
    out.peer = f.socket->unix_diag->peer_ino;
    out.shutdown = f.socket->unix_diag->shutdown;
    auto dup = remote::grab_fd(all.pid, f.fd);
    if (!dup) {
      return std::move(dup).error();
    }
    auto q = peek_queue(dup->get(), out.sock_type, f.socket->unix_diag->queued_bytes);
    if (!q) {
      return std::move(q).error().context(fmt::format("fd {}: unix socketpair", f.fd));
    }
    out.data = sink.add_blob(q->bytes.data(), q->bytes.size());
    out.messages = std::move(q->messages);
    return {};
  }
  Result<int> recreate(FdRecreate& r, const image::FdState& f) const override {
    auto key = std::make_pair(image::FdKind::kUnixPair, std::min(f.ino, f.peer));
    auto it = r.shared.find(key);
    if (it == r.shared.end()) {
      VOS_TRY(create(r, f), "fd {}: unix socketpair", f.fd);
      it = r.shared.find(key);
    }
    // [0] is the end with the lower inode.
    int fd = ::fcntl(it->second[f.ino < f.peer ? 0 : 1], F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      return sys_error("fd {}: socketpair end", f.fd);
    }
    return fd;
  }

 private:
  // Writes `from`'s queued messages into the pair through `through`, the other end.
  static Status refill(FdRecreate& r, const image::FdState& from, int through) {
    std::string_view bytes = r.blob(from.data);
    size_t at = 0;
    int size = static_cast<int>(std::min<size_t>(bytes.size() * 2 + 65536, 64u << 20));
    ::setsockopt(through, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    for (uint32_t len : from.messages) {
      if (at + len > bytes.size()) {
        return user_error("corrupt image: queued messages beyond their data");
      }
      size_t done = 0;
      do {
        ssize_t n = ::send(through, bytes.data() + at + done, len - done, MSG_DONTWAIT);
        if (n < 0) {
          return sys_error("putting back {} queued bytes", bytes.size());
        }
        done += static_cast<size_t>(n);
      } while (from.sock_type == SOCK_STREAM && done < len);
      at += len;
    }
    return {};
  }

  static const image::FdState* find_peer(const FdRecreate& r, const image::FdState& f) {
    for (const auto& o : r.proc.fds) {
      if (o.kind == image::FdKind::kUnixPair && o.ino == f.peer && o.dup_of < 0) {
        return &o;
      }
    }
    return nullptr;
  }

  static Status create(FdRecreate& r, const image::FdState& f) {
    int sv[2];
    if (::socketpair(AF_UNIX, f.sock_type | SOCK_CLOEXEC, 0, sv) != 0) {
      return sys_error("socketpair");
    }
    auto a = r.lift(sv[0]);
    auto b = r.lift(sv[1]);
    if (!a || !b) {
      return sys_error("moving socketpair ends");
    }
    const image::FdState* peer = find_peer(r, f);
    if (peer == nullptr) {
      return user_error("corrupt image: the other end (socket {}) is not in the image", f.peer);
    }
    const image::FdState& low = f.ino < f.peer ? f : *peer;
    const image::FdState& high = f.ino < f.peer ? *peer : f;
    r.shared[{image::FdKind::kUnixPair, std::min(f.ino, f.peer)}] = {*a, *b};
    // What waits in an end's queue was sent by the other end: sent again that way.
    VOS_TRY(refill(r, low, *b), "socket {}", low.ino);
    VOS_TRY(refill(r, high, *a), "socket {}", high.ino);
    for (const auto* e : {&low, &high}) {
      int fd = e == &low ? *a : *b;
      // The kernel's shutdown bits: 1 receive, 2 send.
      int how = e->shutdown == 3 ? SHUT_RDWR : e->shutdown == 2 ? SHUT_WR : SHUT_RD;
      if (e->shutdown != 0 && ::shutdown(fd, how) != 0) {
        return sys_error("shutdown of socket {}", e->ino);
      }
    }
    return {};
  }
};

}  // namespace

const FdKindHandler& unix_pair_socket_kind() {
  static const UnixPairSocket k;
  return k;
}

}  // namespace vos::fds
