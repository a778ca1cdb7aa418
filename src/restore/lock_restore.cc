// Host side (the new process; the keeper).
#include "restore/lock_restore.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "capture/proc_files.h"
#include "fds/file_locks.h"

namespace vos::restore {

namespace {

using image::FileLock;
using image::LockKind;
using image::LockType;

bool held_elsewhere(int err) {
  return err == EAGAIN || err == EACCES || err == EWOULDBLOCK;
}

struct flock record_lock(const FileLock& l, short type) {
  struct flock q {};
  q.l_type = type;
  q.l_whence = SEEK_SET;
  q.l_start = static_cast<off_t>(l.start);
  q.l_len = static_cast<off_t>(l.len);
  return q;  // l_pid 0, as F_OFD_* require
}

Status take(int fd, const FileLock& l) {
  int r = 0;
  if (l.kind == LockKind::kFlock) {
    r = ::flock(fd, (l.type == LockType::kWrite ? LOCK_EX : LOCK_SH) | LOCK_NB);
  } else {
    struct flock q = record_lock(l, l.type == LockType::kWrite ? F_WRLCK : F_RDLCK);
    r = ::fcntl(fd, l.kind == LockKind::kOfd ? F_OFD_SETLK : F_SETLK, &q);
  }
  if (r == 0) {
    return {};
  }
  if (!held_elsewhere(errno)) {
    return sys_error("setting the program's {}", image::describe_lock(l));
  }
  // What is in the way, asked the way the lock was set (F_GETLK passes over this process's own
  // POSIX locks, F_OFD_GETLK over this open file description's).
  std::string theirs;
  if (l.kind != LockKind::kFlock) {
    struct flock q = record_lock(l, l.type == LockType::kWrite ? F_WRLCK : F_RDLCK);
    if (::fcntl(fd, l.kind == LockKind::kOfd ? F_OFD_GETLK : F_GETLK, &q) == 0 &&
        q.l_type != F_UNLCK) {
      FileLock other{q.l_pid == -1 ? LockKind::kOfd : LockKind::kPosix,
                     q.l_type == F_WRLCK ? LockType::kWrite : LockType::kRead,
                     static_cast<uint64_t>(q.l_start), static_cast<uint64_t>(q.l_len)};
      theirs = fmt::format(" ({})", image::describe_lock(other));  // pid: outside this namespace
    }
  }
  return user_error(
      "the program's {} is held by another process now{}, taken since the checkpoint; "
      "restoring would let the program believe it holds a lock it does not",
      image::describe_lock(l), theirs);
}

}  // namespace

Status take_mapping_locks(int fd, const image::MemoryArea& a) {
  for (const auto& l : a.locks) {
    VOS_TRY(take(fd, l), "{}", a.name);
  }
  return {};
}

namespace {

bool lock_less(const FileLock& a, const FileLock& b) {
  return std::tie(a.kind, a.type, a.start, a.len) < std::tie(b.kind, b.type, b.start, b.len);
}

bool lock_equal(const FileLock& a, const FileLock& b) {
  return !lock_less(a, b) && !lock_less(b, a);
}

std::string list_locks(std::vector<FileLock> locks) {
  if (locks.empty()) {
    return "none";
  }
  std::string s;
  for (const auto& l : locks) {
    s += (s.empty() ? "" : ", ") + image::describe_lock(l);
  }
  return s;
}

}  // namespace

Status take_file_locks(const image::ProcessImage& p) {
  for (const auto& f : p.fds) {
    for (const auto& l : f.locks) {
      VOS_TRY(take(f.fd, l), "fd {}: file {}", f.fd, f.path);
    }
  }
  return {};
}

PosixLockedFiles PosixLockedFiles::of(const image::ProcessImage& p) {
  PosixLockedFiles out;
  std::vector<std::pair<dev_t, ino_t>> locked;
  for (const auto& f : p.fds) {
    struct stat st {};
    if (f.locks.empty() || ::fstat(f.fd, &st) != 0) {
      continue;
    }
    if (std::any_of(f.locks.begin(), f.locks.end(),
                    [](const FileLock& l) { return l.kind == LockKind::kPosix; })) {
      out.locked_.emplace_back(st.st_dev, st.st_ino);
    }
  }
  if (out.locked_.empty()) {
    return out;
  }
  for (const auto& f : p.fds) {
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
      continue;
    }
    auto it = std::find_if(p.fds.begin(), p.fds.end(),
                           [&](const image::FdState& o) { return o.fd == f.dup_of; });
    const auto& owner = f.dup_of >= 0 && it != p.fds.end() ? *it : f;
    bool own = std::any_of(owner.locks.begin(), owner.locks.end(),
                           [](const FileLock& l) { return l.kind != LockKind::kPosix; });
    out.fds_.push_back({st.st_dev, st.st_ino, f.fd, f.flags & O_ACCMODE, own});
  }
  return out;
}

Result<int> PosixLockedFiles::fd_for(const std::string& path, bool rw) const {
  if (locked_.empty()) {
    return -1;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 ||
      std::find(locked_.begin(), locked_.end(), std::make_pair(st.st_dev, st.st_ino)) ==
          locked_.end()) {
    return -1;
  }
  // One without OFD or flock locks first: a mapping holds its open file description, and with
  // it such locks, after the program closes the descriptor.
  int best = -1;
  bool best_own = true;
  for (const auto& f : fds_) {
    bool fits = rw ? f.access == O_RDWR : f.access != O_WRONLY;
    if (f.dev == st.st_dev && f.ino == st.st_ino && fits &&
        (best < 0 || (best_own && !f.holds_own_locks))) {
      best = f.fd;
      best_own = f.holds_own_locks;
    }
  }
  if (best < 0) {
    return user_error(
        "{} holds the program's POSIX locks and no descriptor of the program can map it ({}); "
        "mapping it through one of the restore's own would release them",
        path, rw ? "none is open read-write" : "none is open for reading");
  }
  return best;
}

Status check_file_locks_held(pid_t pid, const image::ProcessImage& p) {
  if (!image::has_file_locks(p)) {
    return {};  // nothing to read: the restore of a program without locks takes none
  }
  // OFD and flock locks by the descriptor they are on, POSIX locks by file: the process owns
  // them, whichever descriptor shows them.
  using Key = std::pair<int, std::pair<dev_t, ino_t>>;
  std::map<Key, std::vector<FileLock>> want, have;
  std::map<Key, std::string> where;
  for (const auto& f : p.fds) {
    if (f.dup_of >= 0) {
      continue;
    }
    struct stat st {};
    if (::stat(fmt::format("/proc/{}/fd/{}", pid, f.fd).c_str(), &st) != 0) {
      if (f.locks.empty()) {
        continue;
      }
      return sys_error("fd {}: checking its locks", f.fd);
    }
    auto info = capture::read_text_file(fmt::format("/proc/{}/fdinfo/{}", pid, f.fd));
    if (!info) {
      return std::move(info).error().context(fmt::format("fd {}: checking its locks", f.fd));
    }
    auto lines = fds::fdinfo_locks(capture::parse_key_values(*info));
    if (!lines) {
      return std::move(lines).error().context(fmt::format("fd {}", f.fd));
    }
    auto key = [&](const FileLock& l) {
      return l.kind == LockKind::kPosix ? Key{-1, {st.st_dev, st.st_ino}} : Key{f.fd, {0, 0}};
    };
    for (const auto& l : f.locks) {
      want[key(l)].push_back(l);
      where[key(l)] = l.kind == LockKind::kPosix ? fmt::format("file {}", f.path)
                                                 : fmt::format("fd {} ({})", f.fd, f.path);
    }
    for (const auto& line : *lines) {
      auto l = fds::image_lock(line, f.fd);
      if (!l) {
        return std::move(l).error();
      }
      have[key(*l)].push_back(*l);
    }
  }
  for (auto* m : {&want, &have}) {
    for (auto& [k, v] : *m) {
      std::sort(v.begin(), v.end(), lock_less);
    }
  }
  for (const auto& [k, w] : want) {
    const auto& h = have[k];
    if (w.size() != h.size() || !std::equal(w.begin(), w.end(), h.begin(), lock_equal)) {
      return user_error(
          "the restored process does not hold the program's locks on {}: wants {}, "
          "holds {}",
          where[k], list_locks(w), list_locks(h));
    }
  }
  for (const auto& [k, h] : have) {
    if (want.count(k) == 0 && !h.empty()) {
      return user_error("the restored process holds locks the program did not: {}", list_locks(h));
    }
  }
  return {};
}

}  // namespace vos::restore
