// Host side (keeper).
#include "capture/write_tracker.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include <cstdio>
#include <mutex>
#include <thread>

#include "abi/kernel_uapi.h"
#include "base/cpu_class.h"
#include "capture/proc_files.h"
#include "capture/ptrace_session.h"

namespace vos::capture {

namespace {

constexpr size_t kScanBatch = 512;

// PAGEMAP_SCAN walks page tables ~2.5 times faster (0.4 instead of 1.1 ms per GiB here) when
// asked for exactly "written, report only that": the freeze's scan is on the pause's critical
// path. Before "fs/proc/task_mmu: fix uffd-wp confusion in pagemap_scan_pmd_entry()" (an mm
// hotfix of 2024-04-29, so in 6.9 or at the latest 6.10) that path read a swapped-out page's
// protection from the wrong bit, and a written page could be missed; older kernels get the general
// path. 6.10 leaves a release of margin for when the hotfix reached Linus.
bool fast_written_scan_is_right() {
  utsname u{};
  int major = 0, minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) {
    return false;
  }
  return major > 6 || (major == 6 && minor >= 10);
}

}  // namespace

namespace {

// The userfaultfd made by the program with `made` (its descriptor number, or -errno), taken
// over by vos and closed in the program with `close_in_program`.
template <typename CloseFn>
Result<UniqueFd> take_program_uffd(pid_t pid, Result<long> made, CloseFn close_in_program) {
  if (!made) {
    return std::move(made).error();
  }
  if (*made < 0) {
    return Error(static_cast<int>(-*made),
                 fmt::format("userfaultfd inside process {} failed", pid));
  }
  auto mine = remote::grab_fd(pid, static_cast<int>(*made));
  Result<long> closed = close_in_program(*made);
  if (!mine) {
    return std::move(mine).error();
  }
  if (!closed || *closed < 0) {
    return user_error("closing vos's userfaultfd inside process {} failed", pid);
  }
  return std::move(*mine);
}

// User-mode-only faults need no privilege; the fd lives in the program for two calls.
constexpr long kProgramUffdFlags = O_CLOEXEC | O_NONBLOCK | uapi::kUffdUserModeOnly;

}  // namespace

Result<WriteTracker> WriteTracker::create(PtraceSession& session, uint64_t syscall_insn) {
  pid_t pid = session.pid();
  session.set_syscall_insn(syscall_insn);
  auto uffd =
      take_program_uffd(pid, session.remote_syscall(pid, SYS_userfaultfd, kProgramUffdFlags),
                        [&](long fd) { return session.remote_syscall(pid, SYS_close, fd); });
  if (!uffd) {
    return std::move(uffd).error();
  }
  return adopt(pid, std::move(*uffd));
}

Result<WriteTracker> WriteTracker::create_in(pid_t pid, pid_t tid, uint64_t syscall_insn) {
  auto call = [&](long nr, long arg) {
    return remote::run_syscall_at(tid, syscall_insn, nr, {arg, 0, 0, 0, 0, 0});
  };
  auto uffd = take_program_uffd(pid, call(SYS_userfaultfd, kProgramUffdFlags),
                                [&](long fd) { return call(SYS_close, fd); });
  if (!uffd) {
    return std::move(uffd).error();
  }
  return adopt(pid, std::move(*uffd));
}

// Reads the userfaultfd's events on a thread of its own, for the tracker's whole life: a program
// that calls mremap on tracked memory waits until its event is read.
struct WriteTracker::MoveLog {
  std::mutex mu;  // held while events are read, so take_moves() sees every move already read
  std::vector<Move> moves;
  UniqueFd stop;
  std::thread reader;

  MoveLog(int uffd, UniqueFd stop_fd) : stop(std::move(stop_fd)) {
    reader = std::thread([this, uffd] { read_events(uffd); });
  }
  MoveLog(const MoveLog&) = delete;
  MoveLog& operator=(const MoveLog&) = delete;
  ~MoveLog() {
    uint64_t one = 1;
    (void)!::write(stop.get(), &one, sizeof one);
    reader.join();
  }

  void read_events(int uffd) {
    cpu_class::CriticalThread critical;  // the program's mremap waits for this thread
    pollfd fds[2] = {{uffd, POLLIN, 0}, {stop.get(), POLLIN, 0}};
    for (;;) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) {
          continue;
        }
        return;
      }
      if (fds[1].revents != 0 || (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
        return;
      }
      std::lock_guard<std::mutex> lock(mu);
      uffd_msg msg{};
      while (::read(uffd, &msg, sizeof msg) == sizeof msg) {  // non-blocking: until EAGAIN
        if (msg.event == UFFD_EVENT_REMAP) {
          moves.push_back({msg.arg.remap.from, msg.arg.remap.to, msg.arg.remap.len});
        }
      }
    }
  }
};

WriteTracker::WriteTracker(pid_t pid, UniqueFd uffd, UniqueFd pagemap,
                           std::unique_ptr<MoveLog> moves)
    : pid_(pid), uffd_(std::move(uffd)), pagemap_(std::move(pagemap)), moves_(std::move(moves)) {}
WriteTracker::WriteTracker(WriteTracker&&) noexcept = default;
WriteTracker& WriteTracker::operator=(WriteTracker&& o) noexcept {
  if (this != &o) {
    moves_.reset();  // its reader thread polls uffd_: it ends before uffd_ is closed
    pid_ = o.pid_;
    uffd_ = std::move(o.uffd_);
    pagemap_ = std::move(o.pagemap_);
    moves_ = std::move(o.moves_);
  }
  return *this;
}
WriteTracker::~WriteTracker() = default;

std::vector<WriteTracker::Move> WriteTracker::take_moves() {
  if (!moves_) {
    return {};
  }
  std::lock_guard<std::mutex> lock(moves_->mu);
  return std::exchange(moves_->moves, {});
}

Result<WriteTracker> WriteTracker::adopt(pid_t pid, UniqueFd uffd) {
  // Older kernels lack some of these; asynchronous write-protect is the one that matters. Without
  // mremap events (never seen: they are older than write-protect) moved memory is untracked.
  constexpr uint64_t kWanted[] = {
      uapi::kUffdFeatureWpAsync | uapi::kUffdFeatureWpUnpopulated |
          uapi::kUffdFeatureWpHugetlbfsShmem | UFFD_FEATURE_EVENT_REMAP,
      uapi::kUffdFeatureWpAsync | uapi::kUffdFeatureWpUnpopulated | UFFD_FEATURE_EVENT_REMAP,
      uapi::kUffdFeatureWpAsync | uapi::kUffdFeatureWpUnpopulated,
  };
  uint64_t features = 0;
  for (uint64_t wanted : kWanted) {
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = wanted;
    if (::ioctl(uffd.get(), UFFDIO_API, &api) == 0) {
      features = wanted;
      break;
    }
  }
  if (features == 0) {
    return sys_error("this kernel has no asynchronous userfaultfd write-protect (6.7+ needed)");
  }
  std::string pm_path = fmt::format("/proc/{}/pagemap", pid);
  UniqueFd pagemap(::open(pm_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) {
    return sys_error("opening {}", pm_path);
  }
  std::unique_ptr<MoveLog> moves;
  if (features & UFFD_FEATURE_EVENT_REMAP) {
    UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop.valid()) {
      return sys_error("eventfd");
    }
    moves = std::make_unique<MoveLog>(uffd.get(), std::move(stop));
  }
  return WriteTracker(pid, std::move(uffd), std::move(pagemap), std::move(moves));
}

Status WriteTracker::reopen() {
  std::string pm_path = fmt::format("/proc/{}/pagemap", pid_);
  UniqueFd pagemap(::open(pm_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) {
    return sys_error("opening {}", pm_path);
  }
  pagemap_ = std::move(pagemap);
  return {};
}

Status WriteTracker::track(uint64_t start, uint64_t end) {
  uffdio_register reg{};
  reg.range = {start, end - start};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) {
    return sys_error("tracking writes to {:#x}-{:#x}", start, end);
  }
  uffdio_writeprotect wp{};
  wp.range = {start, end - start};
  wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (::ioctl(uffd_.get(), UFFDIO_WRITEPROTECT, &wp) != 0) {
    Error e = sys_error("write-protecting {:#x}-{:#x}", start, end);
    uffdio_range range{start, end - start};
    ::ioctl(uffd_.get(), UFFDIO_UNREGISTER, &range);
    return e;
  }
  return {};
}

void WriteTracker::untrack(uint64_t start, uint64_t end) {
  uffdio_range range{start, end - start};
  ::ioctl(uffd_.get(), UFFDIO_UNREGISTER, &range);
}

Result<PageRanges> WriteTracker::scan(uint64_t start, uint64_t end, uint64_t flags,
                                      uint64_t inverted, uint64_t mask, uint64_t anyof) {
  PageRanges out;
  std::vector<uapi::PageRegion> vec(kScanBatch);
  uint64_t at = start;
  while (at < end) {
    uapi::PmScanArg arg{};
    arg.size = sizeof arg;
    arg.flags = flags;
    arg.start = at;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(vec.data());
    arg.vec_len = vec.size();
    arg.category_inverted = inverted;
    arg.category_mask = mask;
    arg.category_anyof_mask = anyof;
    arg.return_mask = anyof | mask;
    long n = ::ioctl(pagemap_.get(), uapi::kPagemapScan, &arg);
    if (n < 0) {
      return sys_error("PAGEMAP_SCAN of process {} at {:#x}", pid_, at);
    }
    for (long i = 0; i < n; ++i) {
      append_range(out, vec[i].start, vec[i].end);
    }
    if (arg.walk_end <= at) {
      return user_error("PAGEMAP_SCAN of process {} made no progress at {:#x}", pid_, at);
    }
    at = arg.walk_end;
  }
  return out;
}

Result<std::optional<PageRanges>> WriteTracker::take_written(uint64_t start, uint64_t end) {
  // Both report what the program wrote; the fast one also reports a discarded page (no entry
  // at all), which is what a discarded page must count as anyway.
  static const bool fast = fast_written_scan_is_right();
  constexpr uint64_t kFlags = uapi::kPmScanWpMatching | uapi::kPmScanCheckWpAsync;
  auto r = fast ? scan(start, end, kFlags, 0, uapi::kPageIsWritten, 0)
                : scan(start, end, kFlags, 0, 0, uapi::kPageIsWritten);
  if (!r) {
    if (r.error().err() == EPERM) {
      return std::optional<PageRanges>();  // not registered (any more): not tracked
    }
    return std::move(r).error();
  }
  return std::optional<PageRanges>(std::move(*r));
}

Result<uint64_t> WriteTracker::written_bytes(uint64_t start, uint64_t end) {
  // Only memory registered for tracking is "write-protect allowed"; everything else would count
  // as written.
  auto r = scan(start, end, 0, 0, uapi::kPageIsWpAllowed | uapi::kPageIsWritten, 0);
  if (!r) {
    return std::move(r).error();
  }
  return range_bytes(*r);
}

Result<PageRanges> WriteTracker::private_pages(uint64_t start, uint64_t end) {
  constexpr uint64_t kNot = uapi::kPageIsFile | uapi::kPageIsPfnZero;
  return scan(start, end, 0, kNot, kNot, uapi::kPageIsPresent | uapi::kPageIsSwapped);
}

}  // namespace vos::capture
