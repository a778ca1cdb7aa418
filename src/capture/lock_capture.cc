// Host side (keeper).
#include "capture/lock_capture.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <optional>
#include <set>
#include <tuple>

#include "fds/file_locks.h"

namespace vos::capture {

namespace {

// Kinds whose restore reopens the same object, which can then be locked again.
bool relockable(image::FdKind k) {
  return k == image::FdKind::kFile || k == image::FdKind::kDir;
}

// A lock as both fdinfo and /proc/locks write it, without the pid (fdinfo's OFD lines say -1).
using LockKey =
    std::tuple<std::string, std::string, std::string, uint64_t, std::optional<uint64_t>>;
LockKey key_of(const fds::LockLine& l) {
  return {l.lock_class, l.type, l.dev_ino, l.start, l.end};
}

}  // namespace

Result<std::vector<image::FileLock>> capture_fd_locks(const fds::FdProbe& f, image::FdKind kind) {
  auto lines = fds::fdinfo_locks(f.info);
  if (!lines) {
    return std::move(lines).error().context(fmt::format("fd {}: fdinfo", f.fd));
  }
  std::vector<image::FileLock> out;
  for (const auto& l : *lines) {
    auto lock = fds::image_lock(l, f.fd);
    if (!lock) {
      return std::move(lock).error();
    }
    if (!relockable(kind)) {
      return user_error("fd {}: {} on {} ({}) is not supported yet", f.fd,
                        image::describe_lock(*lock), f.link, image::fd_kind_name(kind));
    }
    out.push_back(*lock);
  }
  return out;
}

void check_process_locks(const fds::ProbeSet& all, const std::vector<fds::LockLine>* frozen_locks,
                         Obstacles& obstacles, std::vector<MappedLock>* mapped) {
  std::set<LockKey> shown;
  std::vector<const fds::FdProbe*> posix_locked;
  for (const auto& f : all.fds) {
    auto lines = fds::fdinfo_locks(f.info);
    if (!lines) {
      continue;  // reported with the fd
    }
    bool posix = false;
    for (const auto& l : *lines) {
      shown.insert(key_of(l));
      posix = posix || l.lock_class == "POSIX";
    }
    if (posix) {
      posix_locked.push_back(&f);
    }
  }

  if (!posix_locked.empty()) {
    auto maps = read_maps(all.pid);
    if (!maps) {
      obstacles.add(maps.error());
      return;
    }
    for (const auto& m : *maps) {
      struct stat st {};
      if (m.name.empty() || m.name[0] != '/' || ::stat(m.name.c_str(), &st) != 0) {
        continue;
      }
      const fds::FdProbe* locked = nullptr;
      for (const auto* f : posix_locked) {
        if (f->st.st_dev == st.st_dev && f->st.st_ino == st.st_ino) {
          locked = f;
        }
      }
      if (locked == nullptr) {
        continue;
      }
      // What the restore maps the file through must be one of the program's own descriptors.
      bool rw = m.shared && m.w;
      bool fits = false;
      for (const auto& f : all.fds) {
        int acc = f.flags & O_ACCMODE;
        if (f.st.st_dev == st.st_dev && f.st.st_ino == st.st_ino &&
            (rw ? acc == O_RDWR : acc != O_WRONLY)) {
          fits = true;
        }
      }
      if (!fits) {
        obstacles.add(user_error(
            "fd {}: {} holds POSIX locks and is mapped at {:#x}{}, but no descriptor of the "
            "program can map it again ({}): the restore would have to open and close one of its "
            "own, which releases the program's POSIX locks on the file",
            locked->fd, m.name, m.start, rw ? " shared and writable" : "",
            rw ? "none is open read-write" : "none is open for reading"));
      }
    }
  }

  if (frozen_locks == nullptr) {
    return;
  }
  std::optional<std::set<std::string>> mapped_files;  // read only for a lock no fd shows
  for (const auto& l : *frozen_locks) {
    // OFD locks say pid -1 in /proc/locks: they are matched through fdinfo alone.
    if (l.waiting || l.pid != all.pid || shown.count(key_of(l)) != 0) {
      continue;
    }
    if (mapped != nullptr && l.lock_class == "FLOCK" && !mapped_files) {
      mapped_files.emplace();
      if (auto maps = read_maps(all.pid); maps) {
        for (const auto& m : *maps) {
          if (!m.name.empty() && m.name[0] == '/') {
            mapped_files->insert(fds::lock_dev_ino(makedev(m.dev_major, m.dev_minor), m.ino));
          }
        }
      }
    }
    if (mapped != nullptr && l.lock_class == "FLOCK" && mapped_files->count(l.dev_ino) != 0) {
      auto lock = fds::image_lock(l, -1);
      if (lock) {
        mapped->push_back({l.dev_ino, *lock});
        continue;
      }
    }
    obstacles.add(user_error(
        "lock '{}' is held by the program but not through any descriptor it has open (an open "
        "file description kept only by a mapping, or a thread with a descriptor table of its "
        "own): not supported",
        l.text));
  }
}

}  // namespace vos::capture
