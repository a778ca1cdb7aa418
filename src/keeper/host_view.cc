// Host side (init and keeper).
#include "keeper/host_view.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "capture/proc_files.h"

namespace vos::keeper {

Result<HostView> HostView::open() {
  UniqueFd fd(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    return sys_error("opening the host's /proc");
  }
  return HostView(std::move(fd));
}

Result<pid_t> HostView::own_pid() const {
  char buf[32] = {};
  // "self" in a procfs resolves to the caller's pid in that procfs's namespace: the host's.
  ssize_t n = ::readlinkat(proc_.get(), "self", buf, sizeof buf - 1);
  if (n <= 0) {
    return sys_error("reading the host's /proc/self");
  }
  return static_cast<pid_t>(std::atoi(buf));
}

Result<pid_t> HostView::host_pid_of(pid_t ns_pid) const {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ns_pid, 0)));
  if (!pidfd.valid()) {
    return sys_error("pidfd_open({})", ns_pid);
  }
  // A pidfd's fdinfo gives its pid in the namespace of the procfs it is read through.
  std::string path = fmt::format("self/fdinfo/{}", pidfd.get());
  UniqueFd info(::openat(proc_.get(), path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!info.valid()) {
    return sys_error("opening the host's /proc/{}", path);
  }
  char buf[1024];
  ssize_t n = ::read(info.get(), buf, sizeof buf - 1);
  if (n <= 0) {
    return sys_error("reading the host's /proc/{}", path);
  }
  buf[n] = '\0';
  auto kv = capture::parse_key_values(buf);
  std::string pid = kv.get("Pid");
  if (pid.empty() || std::atoi(pid.c_str()) <= 0) {
    return user_error("process {} has no pid on the host (it ended)", ns_pid);
  }
  return static_cast<pid_t>(std::atoi(pid.c_str()));
}

}  // namespace vos::keeper
