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

#include "capture/ptrace_session.h"
#include "restore/restore.h"

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

Status run_syscall_at_stop(pid_t tid, uint64_t insn, long nr, long a0, long a1) {
  auto regs = capture::get_regs(tid);
  if (!regs) {
    return std::move(regs).error();
  }
  user_regs_struct r = *regs;
  r.rip = insn;
  r.rax = static_cast<unsigned long long>(nr);
  r.orig_rax = static_cast<unsigned long long>(-1);
  r.rdi = static_cast<unsigned long long>(a0);
  r.rsi = static_cast<unsigned long long>(a1);
  VOS_TRY(capture::set_regs(tid, r), "preparing syscall");
  for (int stop = 0; stop < 2; ++stop) {
    if (::ptrace(PTRACE_SYSCALL, tid, 0, 0) != 0) {
      return sys_error("ptrace syscall");
    }
    int status = 0;
    if (::waitpid(tid, &status, __WALL) != tid || !WIFSTOPPED(status) ||
        WSTOPSIG(status) != (SIGTRAP | 0x80)) {
      return user_error("thread {}: unexpected state {:#x} while removing the restorer", tid,
                        status);
    }
  }
  auto after = capture::get_regs(tid);
  if (!after) {
    return std::move(after).error();
  }
  if (static_cast<long>(after->rax) < 0) {
    return Error(static_cast<int>(-static_cast<long>(after->rax)), "removing the restorer");
  }
  return {};
}

}  // namespace

Status finish_restore(pid_t pid, const LoadedImage& img, const RegionInfo& region) {
  const auto& p = img.proc;
  std::set<pid_t> parked;
  while (parked.size() < p.threads.size()) {
    pid_t who = 0;
    auto st = wait_any(who);
    if (!st) {
      return std::move(st).error();
    }
    int status = *st;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      if (who == pid) {
        return user_error("the restored process ended during restore ({} {})",
                          WIFEXITED(status) ? "exit" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
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
    // A fault inside the blob: let it kill the process so the error surfaces.
    ::ptrace(PTRACE_CONT, who, 0, sig);
  }
  VOS_TRY(run_syscall_at_stop(pid, region.start + kBlobSyscallInsnOffset, SYS_munmap,
                              static_cast<long>(region.start),
                              static_cast<long>(region.end - region.start)),
          "restore of process {}", pid);
  for (const auto& t : p.threads) {
    user_regs_struct regs{};
    std::memcpy(&regs, img.blobs.data() + t.regs.offset,
                std::min<size_t>(sizeof regs, t.regs.size));
    VOS_TRY(capture::set_regs(t.tid, regs), "thread {}", t.tid);
    std::string xstate = img.blobs.substr(t.xstate.offset, t.xstate.size);
    iovec iov{xstate.data(), xstate.size()};
    if (::ptrace(PTRACE_SETREGSET, t.tid, NT_X86_XSTATE, &iov) != 0) {
      return sys_error("thread {}: restoring FPU/AVX state", t.tid);
    }
    uint64_t mask = t.sigmask;
    if (::ptrace(PTRACE_SETSIGMASK, t.tid, sizeof mask, &mask) != 0) {
      return sys_error("thread {}: restoring signal mask", t.tid);
    }
  }
  for (const auto& t : p.threads) {
    if (::ptrace(PTRACE_DETACH, t.tid, 0, 0) != 0) {
      return sys_error("thread {}: letting it run", t.tid);
    }
  }
  return {};
}

}  // namespace vos::restore
