// Host side (keeper). Open file descriptors: each is probed through /proc and handed to the kind
// that recognises it (fds/kinds.cc); where content is needed (pipe data, memfd contents) the
// kind reads a copy of the descriptor (pidfd_getfd), never disturbing the program's own. File
// locks are read with the descriptor they were set through (capture/lock_capture.cc).
#include <sys/syscall.h>
#include <unistd.h>

#include "capture/capture_context.h"
#include "capture/lock_capture.h"
#include "fds/fd_kind.h"

namespace vos::capture {

namespace {

const fds::FdKindHandler* kind_of(const fds::FdProbe& f, const fds::ProbeSet& all) {
  for (const auto* k : fds::fd_kinds()) {
    if (k->matches(f, all)) {
      return k;
    }
  }
  return nullptr;
}

// The lower fd sharing `f`'s open file description (dup, dup2, fork), or -1.
int find_dup(const fds::ProbeSet& all, const fds::FdProbe& f) {
  constexpr int kKcmpFile = 0;
  for (const auto& o : all.fds) {
    if (o.fd >= f.fd) {
      break;
    }
    if (o.st.st_dev == f.st.st_dev && o.st.st_ino == f.st.st_ino &&
        ::syscall(SYS_kcmp, all.pid, all.pid, kKcmpFile, o.fd, f.fd) == 0) {
      return o.fd;
    }
  }
  return -1;
}

}  // namespace

void precheck_fds(pid_t pid, const std::string& log, Obstacles& obstacles) {
  auto all = fds::probe_fds(pid, log);
  if (!all) {
    obstacles.add(all.error());
    return;
  }
  for (const auto& f : all->fds) {
    const auto* kind = kind_of(f, *all);
    if (kind == nullptr) {
      obstacles.add(fds::unsupported_fd(f));
      continue;
    }
    if (auto st = kind->check(f, *all); !st) {
      obstacles.add(st.error());
    }
    if (find_dup(*all, f) >= 0) {
      continue;  // its locks are the lower fd's
    }
    if (auto locks = capture_fd_locks(f, kind->kind()); !locks) {
      obstacles.add(locks.error());
    }
  }
  check_process_locks(*all, false, obstacles);
}

Status capture_fds(CaptureContext& ctx) {
  auto all = fds::probe_fds(ctx.pid, ctx.log);
  if (!all) {
    return std::move(all).error();
  }
  fds::AddBlob add_blob = [&ctx](const void* data, size_t size) {
    return ctx.add_blob(data, size);
  };
  for (const auto& f : all->fds) {
    image::FdState s;
    if (int dup = find_dup(*all, f); dup >= 0) {
      for (const auto& earlier : ctx.img.fds) {
        if (earlier.fd == dup) {
          s = earlier;  // same object; only the number and close-on-exec differ
          s.data = {};
          s.locks.clear();  // held by the open file description, listed once
        }
      }
      s.fd = f.fd;
      s.dup_of = dup;
      s.cloexec = f.cloexec;
      ctx.img.fds.push_back(std::move(s));
      continue;
    }
    const auto* kind = kind_of(f, *all);
    if (kind == nullptr) {
      return fds::unsupported_fd(f);  // appeared since the precheck
    }
    if (auto st = kind->check(f, *all); !st) {
      return std::move(st).error();
    }
    s.fd = f.fd;
    s.kind = kind->kind();
    s.flags = f.flags;
    s.cloexec = f.cloexec;
    s.pos = std::strtoull(f.info.get("pos").c_str(), nullptr, 10);
    s.path = f.link;
    s.ino = f.st.st_ino;
    VOS_TRY(kind->capture(f, *all, add_blob, s), "fd {}", f.fd);
    auto locks = capture_fd_locks(f, s.kind);
    if (!locks) {
      return std::move(locks).error();
    }
    s.locks = std::move(*locks);
    ctx.img.fds.push_back(std::move(s));
  }
  Obstacles lock_obstacles;
  check_process_locks(*all, true, lock_obstacles);
  if (!lock_obstacles.empty()) {
    return user_error("{}", lock_obstacles.items().front());
  }
  return {};
}

}  // namespace vos::capture
