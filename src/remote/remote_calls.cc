// Host side (keeper).
#include "remote/remote_calls.h"

#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vos::remote {

Result<user_regs_struct> get_regs(pid_t tid) {
  user_regs_struct regs{};
  iovec iov{&regs, sizeof regs};
  if (::ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &iov) != 0) {
    return sys_error("reading registers of thread {}", tid);
  }
  return regs;
}

Status set_regs(pid_t tid, const user_regs_struct& regs) {
  iovec iov{const_cast<user_regs_struct*>(&regs), sizeof regs};
  if (::ptrace(PTRACE_SETREGSET, tid, NT_PRSTATUS, &iov) != 0) {
    return sys_error("setting registers of thread {}", tid);
  }
  return {};
}

Result<int> wait_stop(pid_t tid) {
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(tid, &status, __WALL);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0) {
      return sys_error("waiting for thread {}", tid);
    }
    break;
  }
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    return Error(ESRCH, fmt::format("thread {} exited while stopped by vos", tid));
  }
  return status;
}

namespace {

// `regs` made to enter system call `nr` with `args` at the `syscall` instruction `syscall_insn`.
user_regs_struct call_regs(const user_regs_struct& regs, uint64_t syscall_insn, long nr,
                           const SyscallArgs& args) {
  user_regs_struct r = regs;
  r.rip = syscall_insn;
  r.rax = static_cast<unsigned long long>(nr);
  r.orig_rax = static_cast<unsigned long long>(-1);  // no restart logic on the way back in
  r.rdi = static_cast<unsigned long long>(args[0]);
  r.rsi = static_cast<unsigned long long>(args[1]);
  r.rdx = static_cast<unsigned long long>(args[2]);
  r.r10 = static_cast<unsigned long long>(args[3]);
  r.r8 = static_cast<unsigned long long>(args[4]);
  r.r9 = static_cast<unsigned long long>(args[5]);
  return r;
}

}  // namespace

// Why syscall stops and not a single step over the instruction (one stop instead of two, 15 us
// against 21-29 us here): a stepped thread keeps the trap flag and sits in a SIGTRAP delivery
// stop, which only a ptrace resume or detach clears. If the keeper dies there (killed, out of
// memory), the kernel lets the thread go with both, and the SIGTRAP kills the program. From a
// syscall-exit stop, with its registers put back, it just runs on.
Result<long> run_syscall_from(pid_t tid, const user_regs_struct& regs, uint64_t syscall_insn,
                              long nr, const SyscallArgs& args) {
  VOS_TRY(set_regs(tid, call_regs(regs, syscall_insn, nr, args)), "injecting syscall {}", nr);
  // Syscall-enter-stop, then syscall-exit-stop. A group stop that begins meanwhile (a SIGSTOP
  // sent to the program) is reported as PTRACE_EVENT_STOP: the call goes on (the kernel stops
  // the thread again when vos lets it go).
  for (int stop = 0, group_stops = 0; stop < 2;) {
    if (::ptrace(PTRACE_SYSCALL, tid, 0, 0) != 0) {
      return sys_error("resuming thread {} for an injected syscall", tid);
    }
    auto st = wait_stop(tid);
    if (!st) {
      return std::move(st).error();
    }
    if (WIFSTOPPED(*st) && (*st >> 16) == PTRACE_EVENT_STOP && ++group_stops < 16) {
      continue;
    }
    ++stop;
    if (!WIFSTOPPED(*st) || WSTOPSIG(*st) != (SIGTRAP | 0x80)) {
      return user_error("thread {}: unexpected stop {:#x} during injected syscall {}", tid, *st,
                        nr);
    }
  }
  auto after = get_regs(tid);
  if (!after) {
    return std::move(after).error();
  }
  return static_cast<long>(after->rax);
}

Status run_syscalls_overlapped(std::vector<InjectedCall>& calls) {
  struct Saved {
    user_regs_struct regs{};
    uint64_t mask = 0;
    bool injected = false;  // its registers and mask are to be put back
    bool let_go = false;    // resumed into its call
  };
  std::vector<Saved> saved(calls.size());
  Status st;
  auto fail = [&](Status e) {
    if (st) {
      st = std::move(e);
    }
  };
  for (size_t i = 0; i < calls.size() && st; ++i) {
    const auto& c = calls[i];
    auto regs = get_regs(c.tid);
    if (!regs) {
      fail(std::move(regs).error());
      break;
    }
    saved[i].regs = *regs;
    uint64_t all = ~0ull;
    ::ptrace(PTRACE_GETSIGMASK, c.tid, sizeof saved[i].mask, &saved[i].mask);
    ::ptrace(PTRACE_SETSIGMASK, c.tid, sizeof all, &all);  // no handler may run mid-injection
    saved[i].injected = true;
    if (auto set = set_regs(c.tid, call_regs(*regs, c.syscall_insn, c.nr, c.args)); !set) {
      fail(std::move(set).error().context(fmt::format("injecting syscall {}", c.nr)));
    } else if (::ptrace(PTRACE_SYSCALL, c.tid, 0, 0) != 0) {
      fail(sys_error("resuming thread {} for an injected syscall", c.tid));
    } else {
      saved[i].let_go = true;
    }
  }
  // Syscall-enter-stops, then syscall-exit-stops (a group stop meanwhile: see run_syscall_from).
  // Only a thread let go is waited for; one whose call went wrong stays where it stopped.
  std::vector<bool> running(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    running[i] = saved[i].let_go;
  }
  for (int stop = 0; stop < 2; ++stop) {
    for (size_t i = 0; i < calls.size(); ++i) {
      if (!running[i]) {
        continue;
      }
      pid_t tid = calls[i].tid;
      running[i] = false;
      Result<int> w = wait_stop(tid);
      for (int group_stops = 0;
           w && WIFSTOPPED(*w) && (*w >> 16) == PTRACE_EVENT_STOP && ++group_stops < 16;) {
        if (::ptrace(PTRACE_SYSCALL, tid, 0, 0) != 0) {
          break;
        }
        w = wait_stop(tid);
      }
      if (!w) {
        fail(std::move(w).error());
        saved[i].injected = false;  // gone: nothing to put back
        continue;
      }
      if (!WIFSTOPPED(*w) || WSTOPSIG(*w) != (SIGTRAP | 0x80)) {
        fail(user_error("thread {}: unexpected stop {:#x} during injected syscall {}", tid, *w,
                        calls[i].nr));
        continue;
      }
      if (stop == 0) {
        if (::ptrace(PTRACE_SYSCALL, tid, 0, 0) != 0) {
          fail(sys_error("thread {}: continuing an injected syscall", tid));
        } else {
          running[i] = true;
        }
      }
    }
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    if (!saved[i].injected) {
      continue;
    }
    pid_t tid = calls[i].tid;
    if (auto after = get_regs(tid); after) {
      calls[i].result = static_cast<long>(after->rax);
    } else {
      fail(std::move(after).error());
    }
    if (auto back = set_regs(tid, saved[i].regs); !back) {
      fail(std::move(back).error().context(fmt::format("restoring registers of thread {}", tid)));
    }
    ::ptrace(PTRACE_SETSIGMASK, tid, sizeof saved[i].mask, &saved[i].mask);
  }
  return st;
}

Result<long> run_syscall_at(pid_t tid, uint64_t syscall_insn, long nr, const SyscallArgs& args) {
  auto regs = get_regs(tid);
  if (!regs) {
    return std::move(regs).error();
  }
  return run_syscall_from(tid, *regs, syscall_insn, nr, args);
}

Result<UniqueFd> grab_fd(pid_t pid, int fd) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    return sys_error("pidfd_open({})", pid);
  }
  UniqueFd pfd(pidfd);
  int dup = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  if (dup < 0) {
    return sys_error("pidfd_getfd of fd {}", fd);
  }
  return UniqueFd(dup);
}

}  // namespace vos::remote
