// Host side (keeper, the tracer of the new process). Waits until the blob has parked every
// thread, removes the blob region from inside the process, loads each thread's saved registers,
// FPU state and signal mask, and lets the program run.
#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <cstring>
#include <set>

#include "capture/proc_files.h"
#include "remote/remote_calls.h"
#include "restore/lock_restore.h"
#include "restore/posix_timer_restore.h"
#include "restore/restore.h"
#include "restore/track_restored.h"

namespace vos::restore {

namespace {

constexpr uint64_t kBlobSyscallInsnOffset = 8;  // fixed by blob_entry.S

Result<int> wait_any(pid_t& who) {
  int status = 0;
  while (true) {
    who = ::waitpid(-1, &status, __WALL);
    if (who < 0 && errno == EINTR) {
      continue;
    }
    if (who < 0) {
      return sys_error("waiting for the restored threads");
    }
    return status;
  }
}

}  // namespace

namespace {

// Waits until the blob of every process in `procs` has parked all of its threads.
Status wait_parked(const std::vector<RestoredProcess>& procs) {
  size_t threads = 0;
  std::set<pid_t> mains;
  const RestoredProcess* only = procs.size() == 1 ? &procs.front() : nullptr;
  for (const auto& p : procs) {
    threads += p.proc->threads.size();
    mains.insert(p.pid);
  }
  std::set<pid_t> parked;
  std::string fault;  // how the restorer died, if it did
  while (parked.size() < threads) {
    pid_t who = 0;
    auto st = wait_any(who);
    if (!st) {
      return std::move(st).error();
    }
    int status = *st;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      if (mains.count(who) != 0) {
        return user_error("the restored process{} ended during restore ({} {}{})",
                          only != nullptr ? "" : fmt::format(" {}", who),
                          WIFEXITED(status) ? "exit" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), fault);
      }
      continue;
    }
    int event = status >> 16;
    int sig = WSTOPSIG(status);
    if (event != 0) {
      ::ptrace(PTRACE_CONT, who, 0, 0);  // clone events, initial stops of new threads
      continue;
    }
    if (sig == SIGTRAP) {
      parked.insert(who);  // int3 in vos_blob_park: stays stopped
      continue;
    }
    if (sig == SIGSTOP) {
      ::ptrace(PTRACE_CONT, who, 0, 0);
      continue;
    }
    // A fault inside the blob: let it kill the process so the error surfaces, saying where.
    siginfo_t si{};
    ::ptrace(PTRACE_GETSIGINFO, who, 0, &si);
    auto regs = remote::get_regs(who);
    uint64_t rip = regs ? regs->rip : 0;
    std::string where = fmt::format("{:#x}", rip);
    for (const auto& p : procs) {
      if (rip >= p.region.start && rip < p.region.end) {
        where = fmt::format("restorer offset {:#x}", rip - p.region.start);
      }
    }
    fault = fmt::format("; thread {} got signal {} (code {}, address {}) at {}", who, sig,
                        si.si_code, si.si_addr, where);
    ::ptrace(PTRACE_CONT, who, 0, sig);
  }
  return {};
}

// Once parked: removes the restorer region and loads every thread's saved state (not yet let run).
Status load_saved_state(pid_t pid, const image::ProcessImage& p, const std::string& blobs,
                        const RegionInfo& region) {
  uint64_t blob_syscall = region.start + kBlobSyscallInsnOffset;
  // Last, since a CPU-time timer counts from its arming and the calls above run on the program's
  // main thread.
  VOS_TRY(restore_posix_timers(pid, blob_syscall, region.scratch, p), "restore of process {}", pid);
  // Executed on the blob's own `syscall` instruction: the thread stops at syscall exit and gets
  // its saved registers before it could fetch anything from the unmapped page.
  auto unmapped = remote::run_syscall_at(
      pid, blob_syscall, SYS_munmap,
      {static_cast<long>(region.start), static_cast<long>(region.end - region.start), 0, 0, 0, 0});
  if (!unmapped || *unmapped < 0) {
    return unmapped ? Error(static_cast<int>(-*unmapped), "removing the restorer")
                    : std::move(unmapped).error().context("removing the restorer");
  }
  // Nothing the restore did may have released a lock the program believes it holds.
  VOS_TRY(check_file_locks_held(pid, p), "restore of process {}", pid);
  for (const auto& t : p.threads) {
    user_regs_struct regs{};
    std::memcpy(&regs, blobs.data() + t.regs.offset, std::min<size_t>(sizeof regs, t.regs.size));
    VOS_TRY(remote::set_regs(t.tid, regs), "thread {}", t.tid);
    std::string xstate = blobs.substr(t.xstate.offset, t.xstate.size);
    iovec iov{xstate.data(), xstate.size()};
    if (::ptrace(PTRACE_SETREGSET, t.tid, NT_X86_XSTATE, &iov) != 0) {
      return sys_error("thread {}: restoring FPU/AVX state", t.tid);
    }
    uint64_t mask = t.sigmask;
    if (::ptrace(PTRACE_SETSIGMASK, t.tid, sizeof mask, &mask) != 0) {
      return sys_error("thread {}: restoring signal mask", t.tid);
    }
  }
  return {};
}

// Lets every thread run. Once one runs, the program may end (exit_group) before the others are
// detached: their ESRCH is then the program's own doing, not a failed restore.
Status let_run(const std::vector<const image::ProcessImage*>& procs) {
  bool running = false;
  for (const auto* p : procs) {
    for (const auto& t : p->threads) {
      if (::ptrace(PTRACE_DETACH, t.tid, 0, 0) != 0) {
        if (running && errno == ESRCH) {
          continue;
        }
        return sys_error("thread {}: letting it run", t.tid);
      }
      running = true;
    }
  }
  return {};
}

}  // namespace

namespace {

// Before the blob goes: the lazy restore's userfaultfd out of the process, into the keeper; or,
// for an image taken with --incremental, write tracking armed before the program runs again.
Result<FinishedRestore> take_over(pid_t pid, const image::ProcessImage& p,
                                  const RegionInfo& region) {
  FinishedRestore out;
  out.pid = pid;
  out.proc = &p;
  uint64_t blob_syscall = region.start + kBlobSyscallInsnOffset;
  if (region.lazy_fd >= 0) {
    auto uffd = remote::grab_fd(pid, static_cast<int>(region.lazy_fd));
    if (!uffd) {
      return std::move(uffd).error().context("taking the lazy-restore userfaultfd");
    }
    auto closed =
        remote::run_syscall_at(pid, blob_syscall, SYS_close, {region.lazy_fd, 0, 0, 0, 0, 0});
    if (!closed || *closed < 0) {
      return user_error("closing the lazy-restore userfaultfd in process {}", pid);
    }
    out.lazy_uffd = std::move(*uffd);
  } else if (p.writes_tracked) {
    // (A lazy restore fills memory through its own userfaultfd: not tracked, so the next
    // incremental image is a full one.)
    auto tracker = track_restored_writes(pid, blob_syscall, p, &out.untracked_why);
    if (tracker) {
      out.tracker.emplace(std::move(*tracker));
    } else {
      out.untracked_why = tracker.error().describe();
    }
  }
  return out;
}

}  // namespace

Result<FinishedRestore> finish_restore(pid_t pid, const LoadedImage& img, const RegionInfo& region,
                                       const std::function<Status()>& gate) {
  const auto& p = img.proc;
  VOS_TRY(wait_parked({{pid, &p, region}}), "restore");
  VOS_TRY(gate(), "restore of process {}", pid);
  auto out = take_over(pid, p, region);
  if (!out) {
    return std::move(out).error();
  }
  VOS_TRY(load_saved_state(pid, p, img.blobs, region), "restore");
  VOS_TRY(let_run({&p}), "restore");
  return out;
}

Result<std::vector<FinishedRestore>> finish_restore_tree(const std::vector<RestoredProcess>& procs,
                                                         const LoadedImage& img,
                                                         const std::function<Status()>& gate) {
  VOS_TRY(wait_parked(procs), "restore");
  VOS_TRY(gate(), "restore");
  std::vector<FinishedRestore> out;
  std::vector<const image::ProcessImage*> all;
  for (const auto& p : procs) {
    auto taken = take_over(p.pid, *p.proc, p.region);
    if (!taken) {
      return std::move(taken).error().context(fmt::format("restore of process {}", p.pid));
    }
    out.push_back(std::move(*taken));
    VOS_TRY(load_saved_state(p.pid, *p.proc, img.blobs, p.region), "restore of process {}", p.pid);
    all.push_back(p.proc);
  }
  VOS_TRY(let_run(all), "restore");
  return out;
}

}  // namespace vos::restore
