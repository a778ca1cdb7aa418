// Host side. Directories (O_DIRECTORY / O_PATH descriptors a program keeps, e.g. for openat):
// reopened by path.
#include <fcntl.h>
#include <unistd.h>

#include "fds/fd_kind.h"

namespace vos::fds {

namespace {

class Directory final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kDir; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    return f.link_starts_with("/") && f.type() == S_IFDIR;
  }
  Status check(const FdProbe& f, const ProbeSet&) const override {
    if (f.deleted()) {
      return user_error("fd {}: directory {} was deleted: not supported yet", f.fd, f.link);
    }
    return {};
  }
  Status capture(const FdProbe&, const ProbeSet&, CaptureSink&, image::FdState&) const override {
    return {};
  }
  Status check_restorable(const image::FdState& f, const RestorePolicy&) const override {
    struct stat st {};
    if (::stat(f.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return sys_error("fd {}: directory {} that the program had open is gone", f.fd, f.path);
    }
    return {};
  }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    int fd = ::open(f.path.c_str(), (f.flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_CLOEXEC);
    if (fd < 0) {
      return sys_error("opening directory {}", f.path);
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& directory_kind() {
  static const Directory k;
  return k;
}

}  // namespace vos::fds
