// Host side. FIFOs (named pipes, mkfifo) the program opened by their path, with the bytes in
// flight. Each open of a FIFO is a description of its own, but all share the one pipe buffer
// the kernel keeps while anyone has the FIFO open; so the restore opens the path once for
// reading and writing (which never blocks), puts the unread bytes back in, opens every
// descriptor of the program on it from there (none blocks: a reader and a writer exist), and
// closes its own once all are in place. In a tree, every FIFO descriptor is made by the first
// process, like a pipe's ends.
//
// The buffer is the FIFO's, not the program's: what the program holds must include a read end
// (the bytes are then the program's to read), and at restore nobody else may be reading it or
// have left bytes in it (the original still running, most likely).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fds/fd_kind.h"
#include "fds/pipe_data.h"

namespace vos::fds {

namespace {

bool can_read(int flags) {
  int mode = flags & O_ACCMODE;
  return mode == O_RDONLY || mode == O_RDWR;
}

// Whether the program holds a read end of the FIFO `f` is on (here, or in its tree's other
// processes, which name it by the same path).
bool read_end_inside(const FdProbe& f, const ProbeSet& all) {
  for (const auto& o : all.fds) {
    if (o.type() == S_IFIFO && o.st.st_dev == f.st.st_dev && o.st.st_ino == f.st.st_ino &&
        can_read(o.flags)) {
      return true;
    }
  }
  for (const auto& [link, mode] : all.elsewhere) {
    if (link == f.link && can_read(mode)) {
      return true;
    }
  }
  return false;
}

// The FIFO at `path`, opened for reading and writing, checked to be free for the program.
Result<UniqueFd> open_for_restore(const std::string& path) {
  // Opening it for writing without blocking succeeds only if someone reads it.
  UniqueFd probe(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (probe.valid()) {
    return user_error(
        "FIFO {} is open for reading by another process (the original program, "
        "still running?): its bytes would be shared",
        path);
  }
  if (errno != ENXIO) {
    return sys_error("FIFO {}", path);
  }
  UniqueFd fifo(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fifo.valid()) {
    return sys_error("opening FIFO {}", path);
  }
  struct stat st {};
  if (::fstat(fifo.get(), &st) != 0 || !S_ISFIFO(st.st_mode)) {
    return user_error("{} is no longer a FIFO", path);
  }
  int waiting = 0;
  if (::ioctl(fifo.get(), FIONREAD, &waiting) == 0 && waiting > 0) {
    return user_error("FIFO {} already holds {} bytes another process wrote (or left open)", path,
                      waiting);
  }
  return fifo;
}

class Fifo final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kFifo; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    return f.type() == S_IFIFO && f.link_starts_with("/");
  }
  Status check(const FdProbe& f, const ProbeSet& all) const override {
    if (f.deleted()) {
      return user_error("fd {}: FIFO {} whose name was removed is not supported yet", f.fd, f.link);
    }
    if (!read_end_inside(f, all)) {
      return user_error(
          "fd {}: FIFO {} is read outside the program only (its bytes in flight are the "
          "reader's): not supported yet",
          f.fd, f.link);
    }
    return {};
  }
  Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink& sink,
                 image::FdState& out) const override {
    // The bytes go with every read end (in a tree, the first process that makes the FIFO may
    // hold no read end itself).
    if (can_read(f.flags)) {
      auto data = read_pipe_data(all.pid, f.fd, out.size);
      if (!data) {
        return std::move(data).error();
      }
      out.data = sink.add_blob(data->data(), data->size());
    }
    return {};
  }
  Status check_restorable(const image::FdState& f, const RestorePolicy&) const override {
    struct stat st {};
    if (::stat(f.path.c_str(), &st) != 0) {
      return sys_error("fd {}: FIFO {} is gone (make it again with mkfifo)", f.fd, f.path);
    }
    if (!S_ISFIFO(st.st_mode)) {
      return user_error("fd {}: {} is no longer a FIFO", f.fd, f.path);
    }
    return {};
  }
  Result<int> recreate(FdRecreate& r, const image::FdState& f) const override {
    auto key = std::make_pair(image::FdKind::kFifo, f.ino);
    auto it = r.shared.find(key);
    if (it == r.shared.end()) {
      VOS_TRY(create(r, f), "fd {}: FIFO {}", f.fd, f.path);
      it = r.shared.find(key);
    }
    // The open cannot block (the FIFO has a reader and a writer), but without O_NONBLOCK it
    // waits for the other side's count all the same.
    int fd = ::open(f.path.c_str(), (f.flags & ~O_CREAT & ~O_TRUNC) | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      return sys_error("fd {}: opening FIFO {}", f.fd, f.path);
    }
    if (::fcntl(fd, F_SETFL, f.flags) != 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      return sys_error("fd {}: FIFO flags", f.fd);
    }
    return fd;
  }

 private:
  // The FIFO opened for reading and writing, kept above every program fd until all are
  // placed, with the unread bytes (kept with each read end) back in.
  static Status create(FdRecreate& r, const image::FdState& f) {
    auto fifo = open_for_restore(f.path);
    if (!fifo) {
      return std::move(fifo).error();
    }
    auto kept = r.lift(fifo->release());
    if (!kept) {
      return std::move(kept).error();
    }
    r.shared[{image::FdKind::kFifo, f.ino}] = {*kept};
    const image::FdState* reader = f.data.size != 0 ? &f : nullptr;
    for (const auto& o : r.proc.fds) {
      if (reader == nullptr && o.kind == image::FdKind::kFifo && o.ino == f.ino && o.dup_of < 0 &&
          o.data.size != 0) {
        reader = &o;
      }
    }
    if (reader == nullptr) {
      return {};
    }
    if (reader->size != 0) {
      ::fcntl(*kept, F_SETPIPE_SZ, static_cast<int>(reader->size));
    }
    // Non-blocking: the bytes fit, as they did at the checkpoint.
    return write_all(*kept, r.blob(reader->data));
  }
};

}  // namespace

const FdKindHandler& fifo_kind() {
  static const Fifo k;
  return k;
}

}  // namespace vos::fds
