// Host side.
#include "keeper/namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace vos::keeper {

namespace {

Status write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return sys_error("opening {}", path);
  }
  ssize_t n = ::write(fd, text.data(), text.size());
  int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    errno = e;
    return sys_error("writing '{}' to {}", text, path);
  }
  return {};
}

}  // namespace

Status enter_namespaces(const ClockOffsets& clocks) {
  if (::geteuid() != 0) {
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWUSER) != 0) {
      return sys_error("creating a user namespace (needed without root)");
    }
    VOS_TRY(write_file("/proc/self/setgroups", "deny"), "user namespace");
    VOS_TRY(write_file("/proc/self/uid_map", fmt::format("{} {} 1", uid, uid)), "user namespace");
    VOS_TRY(write_file("/proc/self/gid_map", fmt::format("{} {} 1", gid, gid)), "user namespace");
  }
  // The IPC namespace too: System V shared memory ids are handed out per namespace, and a
  // restored program must get its segments back under the ids it holds (shm_next_id), which
  // only an empty namespace of its own can promise.
  int flags = CLONE_NEWPID | CLONE_NEWIPC | (clocks.set ? CLONE_NEWTIME : 0);
  // A kernel without IPC namespaces (EINVAL) still runs programs, in the host's: vos checkpoint
  // then refuses their System V shared memory, as for a program of an older vos.
  if (::unshare(flags) != 0 && (errno != EINVAL || ::unshare(flags & ~CLONE_NEWIPC) != 0)) {
    return sys_error("creating a pid, IPC{} namespace", clocks.set ? " and time" : "");
  }
  if (clocks.set) {
    auto split = [](int64_t ns) {
      int64_t sec = ns / 1000000000, rem = ns % 1000000000;
      if (rem < 0) {
        rem += 1000000000;
        sec -= 1;
      }
      return fmt::format("{} {}", sec, rem);
    };
    VOS_TRY(write_file("/proc/self/timens_offsets",
                       fmt::format("monotonic {}\nboottime {}\n", split(clocks.monotonic_ns),
                                   split(clocks.boottime_ns))),
            "time namespace");
  }
  return {};
}

Status setup_namespace_mounts() {
  if (::unshare(CLONE_NEWNS) != 0) {
    return sys_error("creating a mount namespace");
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return sys_error("making mounts private");
  }
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return sys_error("mounting /proc for the program's pid namespace");
  }
  return {};
}

Status set_next_pid(pid_t pid) {
  return write_file("/proc/sys/kernel/ns_last_pid", std::to_string(pid - 1));
}

Result<pid_t> last_pid() {
  int fd = ::open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return sys_error("opening /proc/sys/kernel/ns_last_pid");
  }
  char buf[32] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) {
    return sys_error("reading /proc/sys/kernel/ns_last_pid");
  }
  return static_cast<pid_t>(std::atoi(buf));
}

}  // namespace vos::keeper
