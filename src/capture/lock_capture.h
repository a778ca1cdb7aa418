// Host side (keeper). File locks (POSIX record locks, OFD locks, flock): read from the fdinfo of
// the descriptor they were set through, refused before anything is frozen when a restore could
// not set them again exactly.
#pragma once

#include <vector>

#include "capture/obstacles.h"
#include "fds/fd_kind.h"
#include "fds/file_locks.h"
#include "image/process_model.h"

namespace vos::capture {

// The locks set through `f`'s open file description (a descriptor of kind `kind`), or why one
// cannot be restored (a lease; a lock on a kind of descriptor restore does not lock again).
Result<std::vector<image::FileLock>> capture_fd_locks(const fds::FdProbe& f, image::FdKind kind);

// What stands in the way of restoring the locks of the process as a whole: a POSIX-locked file
// the program also maps, with no descriptor the restore could map it through (mapping it through
// one of its own and closing that would release the program's locks), and locks /proc/locks
// gives the program that no descriptor shows (on an open file description kept only by a
// mapping, or owned by a thread with a descriptor table of its own). That last check only once
// the program is frozen, with `frozen_locks` the lines of /proc/locks read since (null while it
// runs: a lock taken between the probe and the read of /proc/locks would look like one).
//
// A flock lock held through a file the program maps but has no descriptor of (it opened,
// locked, mapped and closed it: the JVM's hsperfdata file) is not an obstacle: it is put in
// `mapped` (with the file's dev:inode, as lock lines write it) to be kept with that mapping.
struct MappedLock {
  std::string dev_ino;
  image::FileLock lock;
};
void check_process_locks(const fds::ProbeSet& all, const std::vector<fds::LockLine>* frozen_locks,
                         Obstacles& obstacles, std::vector<MappedLock>* mapped = nullptr);

}  // namespace vos::capture
