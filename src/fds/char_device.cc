// Host side. Character devices that hold no state of the program's own and are the same on every
// machine (/dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty): reopened by
// path on restore. /dev/tty is whatever terminal the restored program has.
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>

#include "fds/fd_kind.h"

namespace vos::fds {

namespace {

struct KnownDevice {
  const char* path;
  unsigned major, minor;
};

constexpr std::array<KnownDevice, 6> kDevices = {{{"/dev/null", 1, 3},
                                                  {"/dev/zero", 1, 5},
                                                  {"/dev/full", 1, 7},
                                                  {"/dev/random", 1, 8},
                                                  {"/dev/urandom", 1, 9},
                                                  {"/dev/tty", 5, 0}}};

const KnownDevice* known(const std::string& path, dev_t rdev) {
  for (const auto& d : kDevices) {
    if (path == d.path && major(rdev) == d.major && minor(rdev) == d.minor) {
      return &d;
    }
  }
  return nullptr;
}

class CharDevice final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kCharDevice; }
  bool also_restores(image::FdKind k) const override { return k == image::FdKind::kDevNull; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    return f.type() == S_IFCHR && known(f.link, f.st.st_rdev) != nullptr;
  }
  Status capture(const FdProbe&, const ProbeSet&, CaptureSink&, image::FdState&) const override {
    return {};
  }
  Status check_restorable(const image::FdState& f, const RestorePolicy&) const override {
    struct stat st {};
    if (::stat(f.path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode) ||
        known(f.path, st.st_rdev) == nullptr) {
      return user_error("fd {}: device {} is missing or not the usual device here", f.fd, f.path);
    }
    return {};
  }
  Result<int> recreate(FdRecreate&, const image::FdState& f) const override {
    int fd = ::open(f.path.c_str(), (f.flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_CLOEXEC);
    if (fd < 0 && f.path == "/dev/tty") {
      return sys_error(
          "opening /dev/tty: the restored program has no controlling terminal (restore it in "
          "the foreground of a terminal)");
    }
    if (fd < 0) {
      return sys_error("opening {}", f.path);
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& char_device_kind() {
  static const CharDevice k;
  return k;
}

}  // namespace vos::fds
