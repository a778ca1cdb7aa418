// Host side (init and keeper, inside the program's pid namespace). The host's view of the
// namespace's processes: their pids as `ps` and `vos ps` show them, which is what error messages
// and the registry name them by.
#pragma once

#include <sys/types.h>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vos::keeper {

class HostView {
 public:
  // Opens the host's /proc; must be called while /proc still is the host's (before the
  // namespace's own is mounted over it).
  static Result<HostView> open();
  // Takes over a descriptor of the host's /proc opened by open() in an ancestor process.
  static HostView adopt(int proc_fd) { return HostView(UniqueFd(proc_fd)); }

  int proc_fd() const { return proc_.get(); }
  // The calling process's pid on the host.
  Result<pid_t> own_pid() const;
  // The host pid of the process that the caller's namespace numbers `ns_pid`.
  Result<pid_t> host_pid_of(pid_t ns_pid) const;

 private:
  explicit HostView(UniqueFd proc) : proc_(std::move(proc)) {}
  UniqueFd proc_;
};

}  // namespace vos::keeper
