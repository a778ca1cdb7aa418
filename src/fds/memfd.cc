// Host side. memfd_create files: their whole content is stored and a new memfd of the same name
// is filled with it (mappings of it are matched by inode: see memory_capture.cc).
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "fds/fd_kind.h"
#include "remote/remote_calls.h"

namespace vos::fds {

namespace {

class Memfd final : public FdKindHandler {
 public:
  image::FdKind kind() const override { return image::FdKind::kMemfd; }
  bool matches(const FdProbe& f, const ProbeSet&) const override {
    return f.link_starts_with("/memfd:");
  }
  Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink& sink,
                 image::FdState& out) const override {
    out.size = static_cast<uint64_t>(f.st.st_size);
    auto dup = remote::grab_fd(all.pid, f.fd);
    if (!dup) {
      return std::move(dup).error();
    }
    std::string data(out.size, '\0');
    if (::pread(dup->get(), data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) {
      return sys_error("reading memfd fd {}", f.fd);
    }
    out.data = sink.add_blob(data.data(), data.size());
    return {};
  }
  Result<int> recreate(FdRecreate& r, const image::FdState& f) const override {
    std::string name = f.path.substr(std::strlen("/memfd:"));
    auto del = name.rfind(" (deleted)");
    if (del != std::string::npos) {
      name.resize(del);
    }
    int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
    if (fd < 0) {
      return sys_error("memfd_create {}", name);
    }
    auto w = write_all(fd, r.blob(f.data));
    if (!w || ::ftruncate(fd, static_cast<off_t>(f.size)) != 0 ||
        ::lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
      ::close(fd);
      return sys_error("filling memfd {}", name);
    }
    return fd;
  }
};

}  // namespace

const FdKindHandler& memfd_kind() {
  static const Memfd k;
  return k;
}

}  // namespace vos::fds
