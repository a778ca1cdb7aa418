// Host side. Regular files, reopened by path at their offset; `vos restore` first checks that the
// file is still there and has the size it had.
#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fds/fd_kind.h"

namespace vos::fds {

namespace {

constexpr decltype(statfs::f_type) kMqueueMagic = 0x19800202;  // linux/magic.h MQUEUE_MAGIC

class RegularFile final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kFile; }
  bool matches(const FdProbe& f, const ProbeSet& all) const override {
    return f.link_starts_with("/") && f.type() == S_IFREG && !all.is_log(f);  // logs: stdio.cc
  }
  Status check(const FdProbe& f, const ProbeSet& all) const override {
    if (f.deleted()) {
      return user_error("fd {}: file {} was deleted: not supported yet", f.fd, f.link);
    }
    // A POSIX message queue looks like a regular file named /NAME, on the kernel's own mount of
    // the program's IPC namespace: reopened by that path, it would be some other file, or none.
    struct statfs fs {};
    if (::statfs(fmt::format("/proc/{}/fd/{}", all.pid, f.fd).c_str(), &fs) == 0 &&
        fs.f_type == kMqueueMagic) {
      return user_error("fd {}: POSIX message queue {} is not supported yet", f.fd, f.link);
    }
    return {};
  }
  Status capture(const FdProbe& f, const ProbeSet&, const AddBlob&,
                 image::FdState& out) const override {
    out.size = static_cast<uint64_t>(f.st.st_size);
    out.mtime_ns = f.st.st_mtim.tv_sec * 1000000000ll + f.st.st_mtim.tv_nsec;
    return {};
  }
  Status check_restorable(const image::FdState& f, const RestorePolicy&) const override {
    struct stat st {};
    if (::stat(f.path.c_str(), &st) != 0) {
      return sys_error("fd {}: file {} that the program had open is gone", f.fd, f.path);
    }
    if (static_cast<uint64_t>(st.st_size) != f.size) {
      return user_error("fd {}: file {} changed size since the checkpoint (was {} bytes, now {})",
                        f.fd, f.path, f.size, st.st_size);
    }
    return {};
  }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    int fd = ::open(f.path.c_str(), (f.flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_CLOEXEC);
    if (fd < 0) {
      return sys_error("opening {}", f.path);
    }
    if (::lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
      ::close(fd);
      return sys_error("seeking {} to {}", f.path, f.pos);
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& regular_file_kind() {
  static const RegularFile k;
  return k;
}

}  // namespace vos::fds
