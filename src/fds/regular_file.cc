// Host side. Regular files. A named file is reopened by path at its offset; `vos restore` first
// checks it against the checkpoint as --files says (fds/file_policy.cc). A deleted file (sqlite's
// temporary files, tmpfile(), a log rotated away) exists nowhere else, so its content is stored
// in the image and recreated unnamed in its directory; every fd of it then shares that one file.
// Several fds of one file keep its record (content, hash) with the lowest of them.
#include <fcntl.h>
#include <sys/vfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fds/fd_kind.h"
#include "fds/file_content.h"
#include "fds/file_policy.h"
#include "remote/remote_calls.h"

namespace vos::fds {

namespace {

constexpr decltype(statfs::f_type) kMqueueMagic = 0x19800202;  // linux/magic.h MQUEUE_MAGIC
bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The file has no name left: its link says so and, in case a real name ends the same way, that
// name is not this file. (A file that still has another hard link is taken as deleted too: its
// content is stored, and the restored file is a copy that the other names do not reach.)
bool unnamed(const FdProbe& f) {
  if (!f.deleted()) {
    return false;
  }
  struct stat named {};
  return ::stat(f.link.c_str(), &named) != 0 || !same_file(named, f.st);
}

// The lowest fd of the program on the same file as `f` (maybe `f` itself): the one that keeps
// the file's record.
const FdProbe& first_of_file(const FdProbe& f, const ProbeSet& all) {
  for (const auto& o : all.fds) {
    if (o.fd >= f.fd) {
      break;
    }
    if (o.type() == S_IFREG && same_file(o.st, f.st) && o.deleted() == f.deleted()) {
      return o;
    }
  }
  return f;
}

bool open_for_writing(const FdProbe& f, const ProbeSet& all) {
  for (const auto& o : all.fds) {
    if (o.type() == S_IFREG && same_file(o.st, f.st) && (o.flags & O_ACCMODE) != O_RDONLY) {
      return true;
    }
  }
  return false;
}

// Whether the image keeps `f`'s content (only with the fd that keeps the record).
bool stores_content(const FdProbe& f, const ProbeSet& all, const FileContentPolicy& files) {
  return &first_of_file(f, all) == &f &&
         (unnamed(f) || (files.with_files && open_for_writing(f, all)));
}

// A descriptor vos reads the program's file through without moving the program's offset: a new
// open file description (an O_DIRECT one of the program's would refuse ordinary buffers), or a
// copy of the program's own where the file's mode lets vos open it for reading no other way.
Result<UniqueFd> open_for_reading(pid_t pid, const FdProbe& f) {
  UniqueFd fd(::open(fmt::format("/proc/{}/fd/{}", pid, f.fd).c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) {
    return fd;
  }
  if ((f.flags & O_ACCMODE) != O_WRONLY && (f.flags & O_DIRECT) == 0) {
    return remote::grab_fd(pid, f.fd);
  }
  return sys_error("opening fd {} ({}) of process {} for reading", f.fd, f.link, pid);
}

// Flags to open the file again with: what F_GETFL showed, less what only creating it means.
int reopen_flags(int flags) {
  return (flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY | O_TMPFILE)) | O_CLOEXEC;
}

class RegularFile final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kFile; }
  bool matches(const FdProbe& f, const ProbeSet& all) const override {
    return f.link_starts_with("/") && f.type() == S_IFREG && !all.is_log(f);  // logs: stdio.cc
  }
  Status check(const FdProbe& f, const ProbeSet& all) const override {
    // A POSIX message queue looks like a regular file named /NAME, on the kernel's own mount of
    // the program's IPC namespace: reopened by that path, it would be some other file, or none.
    struct statfs fs {};
    if (::statfs(fmt::format("/proc/{}/fd/{}", all.pid, f.fd).c_str(), &fs) == 0 &&
        fs.f_type == kMqueueMagic) {
      return user_error("fd {}: POSIX message queue {} is not supported yet", f.fd, f.link);
    }
    return {};
  }
  uint64_t stored_bytes(const FdProbe& f, const ProbeSet& all,
                        const FileContentPolicy& files) const override {
    return stores_content(f, all, files) ? static_cast<uint64_t>(f.st.st_size) : 0;
  }
  Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink& sink,
                 image::FdState& out) const override {
    out.size = static_cast<uint64_t>(f.st.st_size);
    out.mtime_ns = f.st.st_mtim.tv_sec * 1000000000ll + f.st.st_mtim.tv_nsec;
    out.dev = f.st.st_dev;
    out.mode = f.st.st_mode & 07777;
    out.deleted = unnamed(f);
    bool keeps_record = &first_of_file(f, all) == &f;
    bool stored = stores_content(f, all, sink.files);
    if (!keeps_record || !(stored || open_for_writing(f, all))) {
      return {};
    }
    auto file = open_for_reading(all.pid, f);
    if (!file && !stored && !out.deleted) {
      // Only for --files=rewind, which will refuse the file: not a reason to refuse the
      // checkpoint of a program that writes a file vos may not read (mode 0200).
      sink.late_hashes.push_back({f.fd, UniqueFd(), out.size, {}, file.error().describe()});
      return {};
    }
    if (!file) {
      return std::move(file).error();
    }
    std::string_view content;
    if (stored) {
      char* where = sink.file_content(f.fd, out.size);
      VOS_TRY(read_prefix(file->get(), where, out.size), "reading {}", f.link);
      content = std::string_view(where, out.size);
      out.data = {0, out.size};  // placed by the driver
    }
    if (!out.deleted) {
      // Hashed once the program runs again: the stored copy, or the file itself.
      sink.late_hashes.push_back({f.fd, stored ? UniqueFd() : std::move(*file), out.size, content});
    }
    return {};
  }
  Status check_restorable(const image::FdState& f, const RestorePolicy& policy) const override {
    const image::FdState& rec = policy.proc != nullptr ? file_record(*policy.proc, f) : f;
    if (&rec != &f) {
      return {};  // checked with the fd that keeps its record
    }
    if (!f.deleted) {
      return check_file(f, policy);
    }
    if (f.data.size != f.size) {
      return user_error("fd {}: corrupt: deleted file {} has {} bytes of content, {} expected",
                        f.fd, f.path, f.data.size, f.size);
    }
    std::string dir = directory_of(without_deleted_suffix(f.path));
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return user_error(
          "fd {}: file {} was deleted at the checkpoint and is recreated unnamed in "
          "its directory, but {} is gone",
          f.fd, f.path, dir);
    }
    return {};
  }
  Status prepare(const image::FdState& f, const RestorePolicy& policy) const override {
    const image::FdState& rec = policy.proc != nullptr ? file_record(*policy.proc, f) : f;
    if (&rec != &f || f.deleted) {
      return {};
    }
    return rewind_file(f, policy);
  }
  Result<int> recreate(FdRecreate& r, const image::FdState& f) const override {
    std::string path = f.path;
    int flags = reopen_flags(f.flags);
    if (f.deleted) {
      auto shared = unnamed_file(r, f);
      if (!shared) {
        return std::move(shared).error();
      }
      if (shared->own >= 0) {
        return seek(shared->own, f);
      }
      // A magic link: O_NOFOLLOW (Python's TemporaryFile asks for it) would refuse it.
      path = fmt::format("/proc/self/fd/{}", shared->fd);
      flags &= ~O_NOFOLLOW;
    }
    return seek(::open(path.c_str(), flags), f);
  }

 private:
  static Result<int> seek(int fd, const image::FdState& f) {
    if (fd < 0) {
      return sys_error("opening {}", f.path);
    }
    if (::lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
      ::close(fd);
      return sys_error("seeking {} to {}", f.path, f.pos);
    }
    return fd;
  }

  struct Unnamed {
    int fd = -1;   // the file, kept open until every fd is placed
    int own = -1;  // the descriptor made for `f` itself, if it is the one that created the file
  };

  // The recreated deleted file of `f`, made by the first of its fds and shared by the others
  // (each opens it again, so each has its own offset and flags, as before). The fd that created
  // it with O_TMPFILE gets the creating descriptor itself: F_GETFL shows O_TMPFILE.
  static Result<Unnamed> unnamed_file(FdRecreate& r, const image::FdState& f) {
    const image::FdState& rec = file_record(r.proc, f);
    auto key = std::make_pair(image::FdKind::kFile, static_cast<uint64_t>(rec.fd));
    if (auto it = r.shared.find(key); it != r.shared.end()) {
      return Unnamed{it->second.front(), -1};
    }
    bool as_created = (f.flags & O_TMPFILE) == O_TMPFILE && &rec == &f;
    std::string dir = directory_of(without_deleted_suffix(rec.path));
    auto made = create_unnamed(dir, as_created ? f.flags : O_RDWR);
    if (!made) {
      return std::move(made).error().context(fmt::format("recreating deleted file {}", rec.path));
    }
    // (pwrite on an O_APPEND descriptor appends: in order, from empty, the same.)
    VOS_TRY(write_all_at(made->get(), r.blob(rec.data), 0), "filling deleted file {}", rec.path);
    if (::ftruncate(made->get(), static_cast<off_t>(rec.size)) != 0 ||
        ::fchmod(made->get(), rec.mode & 07777) != 0) {
      return sys_error("sizing deleted file {}", rec.path);
    }
    Unnamed u;
    auto kept = r.lift(as_created ? ::fcntl(made->get(), F_DUPFD_CLOEXEC, 0) : made->release());
    if (!kept) {
      return std::move(kept).error();
    }
    u.fd = *kept;
    if (as_created) {
      u.own = made->release();
    }
    r.shared[key].push_back(u.fd);
    return u;
  }
};

}  // namespace

const FdKindHandler& regular_file_kind() {
  static const RegularFile k;
  return k;
}

}  // namespace vos::fds
