// Host side. Pipes whose both ends the program holds (in one process, or in two of a process
// tree), or one end whose other end is closed everywhere (make's pipe after its writer went):
// recreated as one pipe, refilled with the bytes that were unread (copied with tee() at
// the checkpoint, so the program still has them).
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <climits>

#include "fds/fd_kind.h"
#include "fds/pipe_data.h"
#include "remote/remote_calls.h"

namespace vos::fds {

namespace {

int access_mode(const FdProbe& f) {
  return f.flags & O_ACCMODE;
}

bool both_ends_inside(const FdProbe& f, const ProbeSet& all) {
  bool reader = false, writer = false;
  for (const auto& o : all.fds) {
    if (o.link == f.link) {
      reader |= access_mode(o) == O_RDONLY;
      writer |= access_mode(o) == O_WRONLY;
    }
  }
  for (const auto& [link, mode] : all.elsewhere) {
    if (link == f.link) {
      reader |= mode == O_RDONLY;
      writer |= mode == O_WRONLY;
    }
  }
  return reader && writer;
}

// The other end is closed everywhere (a reader sees POLLHUP once the last writer is gone, a
// writer POLLERR once the last reader is): nothing outside the program can be on it, and the
// restore makes the pipe and closes that end again.
bool peer_closed(const FdProbe& f, const ProbeSet& all) {
  auto dup = remote::grab_fd(all.pid, f.fd);
  if (!dup) {
    return false;
  }
  pollfd p{dup->get(), 0, 0};
  if (::poll(&p, 1, 0) < 0) {
    return false;
  }
  return access_mode(f) == O_RDONLY ? (p.revents & POLLHUP) != 0 : (p.revents & POLLERR) != 0;
}

class Pipe final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kPipe; }
  bool matches(const FdProbe& f, const ProbeSet& all) const override {
    return f.link_starts_with("pipe:") && (both_ends_inside(f, all) || peer_closed(f, all));
  }
  Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink& sink,
                 image::FdState& out) const override {
    out.pipe_write_end = access_mode(f) == O_WRONLY;
    if (!out.pipe_write_end) {
      auto data = read_pipe_data(all.pid, f.fd, out.size);
      if (!data) {
        return std::move(data).error();
      }
      out.data = sink.add_blob(data->data(), data->size());
    }
    return {};
  }
  Result<int> recreate(FdRecreate& r, const image::FdState& f) const override {
    auto key = std::make_pair(image::FdKind::kPipe, f.ino);
    auto it = r.shared.find(key);
    if (it == r.shared.end()) {
      VOS_TRY(create(r, f), "fd {}: pipe", f.fd);
      it = r.shared.find(key);
    }
    int fd = ::fcntl(it->second[f.pipe_write_end ? 1 : 0], F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      return sys_error("fd {}: pipe end", f.fd);
    }
    return fd;
  }

 private:
  // Both ends, above every program fd, with the unread bytes (kept with the read end) back in.
  static Status create(FdRecreate& r, const image::FdState& f) {
    const uint64_t ino = f.ino;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return sys_error("pipe2");
    }
    auto rd = r.lift(p[0]);
    auto wr = r.lift(p[1]);
    if (!rd || !wr) {
      return sys_error("moving pipe ends");
    }
    r.shared[{image::FdKind::kPipe, ino}] = {*rd, *wr};
    if (f.tree_desc != 0) {
      // A pipe of a process tree: every end carries the unread bytes (the read end may be in
      // another process than the one creating the pipe).
      if (f.size != 0) {
        ::fcntl(*wr, F_SETPIPE_SZ, static_cast<int>(f.size));
      }
      return write_all(*wr, r.blob(f.data));
    }
    for (const auto& o : r.proc.fds) {
      if (o.kind == image::FdKind::kPipe && o.ino == ino && !o.pipe_write_end && o.dup_of < 0) {
        if (o.size != 0) {
          ::fcntl(*wr, F_SETPIPE_SZ, static_cast<int>(o.size));
        }
        VOS_TRY(write_all(*wr, r.blob(o.data)), "refilling the pipe");
        break;
      }
    }
    return {};
  }
};

}  // namespace

Result<std::string> read_pipe_data(pid_t pid, int fd, uint64_t& capacity) {
  auto dup = remote::grab_fd(pid, fd);
  if (!dup) {
    return std::move(dup).error();
  }
  int cap = ::fcntl(dup->get(), F_GETPIPE_SZ);
  capacity = cap > 0 ? static_cast<uint64_t>(cap) : 65536;
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    return sys_error("pipe2");
  }
  UniqueFd pr(p[0]), pw(p[1]);
  ::fcntl(pw.get(), F_SETPIPE_SZ, cap);
  ssize_t n = ::tee(dup->get(), pw.get(), INT_MAX, SPLICE_F_NONBLOCK);
  if (n < 0 && errno != EAGAIN) {
    return sys_error("copying unread data of pipe fd {}", fd);
  }
  std::string data;
  char buf[65536];
  while (true) {
    ssize_t r = ::read(pr.get(), buf, sizeof buf);
    if (r <= 0) {
      break;
    }
    data.append(buf, static_cast<size_t>(r));
  }
  return data;
}

const FdKindHandler& pipe_kind() {
  static const Pipe k;
  return k;
}

}  // namespace vos::fds
