// Host side (keeper). Which processes of the program are alive. The program's processes are not
// the keeper's children (they are init's: see init_process.h), so the keeper watches them
// through pidfds: one per process in the namespace's /proc but init, the keeper and its helpers.
// The program is whatever its processes are: it ends when the last one does, not the first.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <map>
#include <set>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vos::keeper {

class ProgramWatch {
 public:
  explicit ProgramWatch(pid_t root) : root_(root) {}

  // Processes of the keeper's own (a lazy restore's watchdog) that are not the program.
  void add_helper(pid_t pid) { helpers_.insert(pid); }
  void remove_helper(pid_t pid) { helpers_.erase(pid); }

  // Reads the namespace's /proc again: starts watching new processes, drops ended ones.
  void rescan();
  bool root_alive() const { return alive_.count(root_) != 0; }
  // Live processes of the program other than the first one (daemons it left, children).
  std::vector<pid_t> others() const;
  bool empty() const { return alive_.empty(); }

  // One pollfd per watched process (POLLIN once it has ended), appended to `fds`; after poll,
  // `forget_ended` drops those that reported it.
  void add_pollfds(std::vector<pollfd>& fds) const;
  void forget_ended(const std::vector<pollfd>& fds);

 private:
  pid_t root_;
  std::set<pid_t> helpers_;
  std::map<pid_t, UniqueFd> alive_;
};

}  // namespace vos::keeper
