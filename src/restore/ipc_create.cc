// Host side (restore): see ipc_create.h.
#include "restore/ipc_create.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <string>

namespace vos::restore {

Result<int> create_ipc_object(int next_id_fd, const char* next_id_path, int id, uid_t cuid,
                              gid_t cgid, const std::function<int()>& make,
                              const std::function<void(int)>& remove) {
  std::string text = std::to_string(id);
  if (::pwrite(next_id_fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return sys_error("setting {} to {}", next_id_path, id);
  }
  uid_t euid = ::geteuid();
  gid_t egid = ::getegid();
  bool as_creator = cuid != euid || cgid != egid;
  // This thread only (raw calls, not libc's process-wide ones); the next id was written while
  // the caller still had its own privileges.
  if (as_creator && (::syscall(SYS_setresgid, -1, cgid, -1) != 0 ||
                     ::syscall(SYS_setresuid, -1, cuid, -1) != 0)) {
    int e = errno;
    ::syscall(SYS_setresgid, -1, egid, -1);
    errno = e;
    return sys_error("creating it as its creator {}:{}", cuid, cgid);
  }
  int got = make();
  int e = errno;
  if (as_creator) {
    ::syscall(SYS_setresuid, -1, euid, -1);
    ::syscall(SYS_setresgid, -1, egid, -1);
  }
  if (got < 0) {
    errno = e;
    return sys_error("creating it");
  }
  if (got != id) {
    remove(got);
    return user_error("the kernel gave id {} instead (is {} ignored?)", got, next_id_path);
  }
  return got;
}

}  // namespace vos::restore
