// Host side (the new process before the blob; the keeper at the program's last stop). The
// program's file locks are taken again by the new process itself, which has the program's pid
// and becomes the program: POSIX locks it takes are the program's own. Any close of a file by
// that process releases all its POSIX locks on the file, so nothing the restore does afterwards
// may close a descriptor of a POSIX-locked file; the keeper checks that at the end.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "image/process_model.h"

namespace vos::restore {

// Once every fd is at its number: takes each fd's locks without waiting (F_SETLK, F_OFD_SETLK,
// flock with LOCK_NB). A lock someone else holds now fails the restore, naming it: the program
// must never run believing it holds a lock it does not.
Status take_file_locks(const image::ProcessImage& p);

// On the descriptor the restore maps area `a` through (kept by the mapping once closed): the
// flock locks the program held only through that mapping, without waiting.
Status take_mapping_locks(int fd, const image::MemoryArea& a);

// The program's descriptors of files it holds POSIX locks on. Such a file must be mapped (and
// given to PR_SET_MM_MAP) through one of them, not through a descriptor the restore opens and
// later closes.
class PosixLockedFiles {
 public:
  // Reads the placed descriptors (fstat).
  static PosixLockedFiles of(const image::ProcessImage& p);
  // -1 if the program holds no POSIX lock on the file at `path`; otherwise a descriptor of the
  // program's to use for it (readable; read-write when `rw`), or an error if none fits.
  Result<int> fd_for(const std::string& path, bool rw) const;

 private:
  struct Fd {
    dev_t dev;
    ino_t ino;
    int fd;
    int access;            // O_RDONLY, O_WRONLY, O_RDWR
    bool holds_own_locks;  // OFD or flock locks: a mapping would keep them past a close
  };
  std::vector<std::pair<dev_t, ino_t>> locked_;
  std::vector<Fd> fds_;
};

// In the keeper, at the program's last stop: every descriptor holds exactly the image's locks
// (its OFD and flock locks), and every POSIX-locked file the image's POSIX locks.
Status check_file_locks_held(pid_t pid, const image::ProcessImage& p);

}  // namespace vos::restore
