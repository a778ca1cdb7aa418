// Host side (the new process, before the blob). Each descriptor is recreated by the kind that
// captured it (fds/kinds.cc) and moved to its number: first every kind that stands alone, then
// the descriptors sharing an open file description with one of those (dup), then the kinds that
// refer to other descriptors (epoll) and their duplicates.
#include "restore/fd_restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "fds/fd_kind.h"

namespace vos::restore {

namespace {

using image::FdState;

constexpr int kFdFlagsSettable = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

// Moves `fd` (a descriptor for f's object) to f's number with f's flags.
Status place(int fd, const FdState& f) {
  if (fd != f.fd) {
    if (::dup3(fd, f.fd, f.cloexec ? O_CLOEXEC : 0) < 0) {
      ::close(fd);
      return sys_error("fd {}: dup3", f.fd);
    }
    ::close(fd);
  } else if (!f.cloexec) {
    ::fcntl(fd, F_SETFD, 0);
  }
  if (::fcntl(f.fd, F_SETFL, f.flags & kFdFlagsSettable) != 0) {
    return sys_error("fd {}: restoring flags", f.fd);
  }
  return {};
}

// The descriptors sharing an open file description with one already placed (`placed` grows).
Status place_dups_of(const image::ProcessImage& p, std::set<int>& placed) {
  for (const auto& f : p.fds) {
    if (f.dup_of < 0 || placed.count(f.fd) != 0 || placed.count(f.dup_of) == 0) {
      continue;
    }
    if (::dup3(f.dup_of, f.fd, f.cloexec ? O_CLOEXEC : 0) < 0) {
      return sys_error("fd {}: duplicating fd {}", f.fd, f.dup_of);
    }
    placed.insert(f.fd);
  }
  return {};
}

// Closes everything the restore inherited but `keep`, so program fds land on free numbers.
void close_all_but(const std::set<int>& keep) {
  DIR* d = ::opendir("/proc/self/fd");
  std::vector<int> to_close;
  if (d != nullptr) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') {
        int fd = std::atoi(e->d_name);
        if (fd != ::dirfd(d) && keep.count(fd) == 0) {
          to_close.push_back(fd);
        }
      }
    }
    ::closedir(d);
  }
  for (int fd : to_close) {
    ::close(fd);
  }
}

}  // namespace

Status restore_fds(const LoadedImage& img, std::vector<int*> keep, TreeShared* tree) {
  const auto& p = img.proc;
  int top = 2;
  for (const auto& f : p.fds) {
    top = std::max(top, f.fd);
  }
  fds::FdRecreate r{p, img.blobs, img.policy};
  r.above = top + 1;
  for (int i = 0; i < 3; ++i) {
    r.stdio_copy[i] = ::fcntl(i, F_DUPFD_CLOEXEC, top + 1);
    keep.push_back(&r.stdio_copy[i]);
  }
  if (tree != nullptr) {
    for (auto& [desc, fd] : tree->fds) {
      keep.push_back(&fd);
    }
  }
  for (int* k : keep) {
    if (*k >= 0 && *k <= top) {
      int moved = ::fcntl(*k, F_DUPFD_CLOEXEC, top + 1);
      if (moved < 0) {
        return sys_error("moving helper fd {} out of the way", *k);
      }
      ::close(*k);
      *k = moved;
    }
  }
  std::set<int> keep_set;
  for (int* k : keep) {
    keep_set.insert(*k);
  }
  close_all_but(keep_set);
  std::set<int> placed;
  for (int stage = 0; stage <= 1; ++stage) {
    for (const auto& f : p.fds) {
      if (f.dup_of >= 0) {
        continue;
      }
      auto found = fds::handler_of(f);
      if (!found) {
        return std::move(found).error();
      }
      const auto* kind = *found;
      if (kind->stage() != stage) {
        continue;
      }
      if (f.tree_desc != 0 && stage == 0) {
        auto it = tree != nullptr ? tree->fds.find(f.tree_desc) : decltype(tree->fds)::iterator{};
        if (tree == nullptr || it == tree->fds.end()) {
          return user_error("fd {}: corrupt image: shared object {} was not made", f.fd,
                            f.tree_desc);
        }
        int fd = ::fcntl(it->second, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
          return sys_error("fd {}: the tree's shared object {}", f.fd, f.tree_desc);
        }
        VOS_TRY(place(fd, f), "fds");
        placed.insert(f.fd);
        continue;
      }
      auto fd = kind->recreate(r, f);
      if (!fd) {
        return std::move(fd).error().context(
            fmt::format("fd {} ({})", f.fd, image::fd_kind_name(f.kind)));
      }
      VOS_TRY(place(*fd, f), "fds");
      placed.insert(f.fd);
    }
    VOS_TRY(place_dups_of(p, placed), "fds");
  }
  for (auto& [key, shared] : r.shared) {
    for (int fd : shared) {
      ::close(fd);
    }
  }
  for (int i = 0; i < 3; ++i) {
    ::close(r.stdio_copy[i]);
  }
  if (tree != nullptr) {
    for (auto& [desc, fd] : tree->fds) {
      ::close(fd);
    }
    tree->fds.clear();
  }
  return {};
}

}  // namespace vos::restore
