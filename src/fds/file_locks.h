// Host side (keeper's capture, vos restore's checks, the new process, the keeper's last check).
// File locks as the kernel shows them: the "lock:" lines of /proc/PID/fdinfo/N (the locks set
// through that open file description; granted ones only, waiters are not listed) and the lines
// of /proc/locks, both written by the kernel's lock_get_status.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "capture/proc_files.h"
#include "image/process_model.h"

namespace vos::fds {

struct LockLine {
  bool waiting = false;    // "->": a request blocked by the lock above it (/proc/locks only)
  std::string lock_class;  // POSIX, OFDLCK, FLOCK, LEASE, DELEG, ACCESS, UNKNOWN
  std::string mode;        // ADVISORY; for leases ACTIVE, BREAKING, BREAKER
  std::string type;        // READ, WRITE, UNLCK
  long long pid = 0;       // in the reader's pid namespace; -1 for OFD locks
  std::string dev_ino;     // "MAJ:MIN:INO" (hex, hex, decimal)
  uint64_t start = 0;
  std::optional<uint64_t> end;  // last byte; none: to EOF
  std::string text;             // as the kernel wrote it, for messages
};

// One line without its "lock:" prefix: "1: POSIX  ADVISORY  WRITE 123 fe:00:456 0 EOF".
Result<LockLine> parse_lock_line(std::string_view line);
// The "lock:" lines of an fdinfo file.
Result<std::vector<LockLine>> fdinfo_locks(const capture::KeyValues& fdinfo);
// Every line of /proc/locks as seen through `proc_locks_path`.
Result<std::vector<LockLine>> read_proc_locks(const std::string& proc_locks_path = "/proc/locks");

// What the image keeps of a lock set through fd `fd` (for messages), or why vos cannot set it
// again: leases and delegations (the kernel breaks them on other processes' opens, which a
// restore cannot replay), and any class this vos does not know.
Result<image::FileLock> image_lock(const LockLine& line, int fd);

// "%02x:%02x:%lu" of a device and inode, as the kernel writes them in lock lines.
std::string lock_dev_ino(dev_t dev, ino_t ino);

// In vos restore, before anything is created: fails, naming the holder, if another process or
// open file description now holds a lock conflicting with one of f's locks (the file was locked
// by someone else since the checkpoint). The new process takes them for real later; this only
// makes the common case fail early with the holder's host pid.
Status check_locks_free(const image::FdState& f);

}  // namespace vos::fds
