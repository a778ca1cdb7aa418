// Host side (keeper).
#include "capture/ptrace_session.h"

#include <dirent.h>
#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "abi/kernel_uapi.h"
#include "capture/proc_files.h"
#include "remote/remote_calls.h"

namespace vos::capture {

using remote::get_regs;
using remote::set_regs;
using remote::wait_stop;

namespace {

constexpr long kErestartSys = -512, kErestartNoIntr = -513, kErestartNoHand = -514,
               kErestartRestartBlock = -516;

bool eintr_means_nothing_done(long nr) {
  switch (nr) {
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
    case uapi::kSysEpollPwait2:
    case SYS_semop:
    case SYS_semtimedop:
    case SYS_rt_sigtimedwait:
    case SYS_io_getevents:
    case SYS_io_pgetevents:
    // Sockets with SO_RCVTIMEO / SO_SNDTIMEO (without a timeout they restart by themselves).
    case SYS_read:
    case SYS_write:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_accept:
    case SYS_accept4:
      return true;
    default:
      return false;
  }
}

}  // namespace

user_regs_struct resumable_regs(const user_regs_struct& in, bool deliverable_signal_pending) {
  user_regs_struct r = in;
  auto nr = static_cast<long>(r.orig_rax);
  auto ret = static_cast<long>(r.rax);
  if (nr < 0) {
    return r;
  }
  bool restart = false;
  switch (ret) {
    case kErestartSys:
    case kErestartNoIntr:
    case kErestartNoHand:
      restart = true;
      break;
    case kErestartRestartBlock:
      restart = true;
      if (nr == SYS_nanosleep && r.rsi != 0) {
        r.rdi = r.rsi;  // the kernel wrote the remaining time to *rem: sleep only that long
      } else if (nr == SYS_clock_nanosleep && (r.rsi & TIMER_ABSTIME) == 0 && r.r10 != 0) {
        r.rdx = r.r10;
      }
      break;
    case -EINTR:
      // Calls the kernel never restarts (signal(7)) report a ptrace stop as EINTR: without a
      // signal to deliver, nothing else interrupted them. Only those for which EINTR means
      // nothing was done (a semop performed no operation, a timed socket call moved no byte):
      // not connect, whose attempt goes on.
      restart = !deliverable_signal_pending && eintr_means_nothing_done(nr);
      break;
    default:
      break;
  }
  if (restart) {
    r.rax = r.orig_rax;
    r.rip -= 2;  // back onto the 2-byte `syscall` instruction
  }
  r.orig_rax = static_cast<unsigned long long>(-1);
  return r;
}

Result<PtraceSession> PtraceSession::freeze(pid_t pid, const std::set<pid_t>& interrupted) {
  PtraceSession s(pid);
  std::set<pid_t> seized;
  for (int round = 0; round < 100; ++round) {
    auto tasks = list_tasks(pid);
    if (!tasks) {
      return std::move(tasks).error();
    }
    bool fresh = false;
    for (pid_t tid : *tasks) {
      if (seized.count(tid) != 0) {
        continue;
      }
      fresh = true;
      if (interrupted.count(tid) == 0) {
        if (::ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACESYSGOOD) != 0) {
          if (errno == ESRCH) {
            continue;  // the thread exited meanwhile
          }
          return sys_error("ptrace seize of thread {} of process {}", tid, pid);
        }
        if (::ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
          return sys_error("ptrace interrupt of thread {}", tid);
        }
      }
      seized.insert(tid);
      auto st = wait_stop(tid);
      if (!st) {
        seized.erase(tid);
        continue;
      }
      ThreadStop t;
      t.tid = tid;
      // A stopped job reports its group stop first: once continued, the thread takes the trap
      // of our interrupt, from where injected calls run (its group stays stopped).
      if (WIFSTOPPED(*st) && (*st >> 16) == PTRACE_EVENT_STOP && WSTOPSIG(*st) != SIGTRAP) {
        t.group_stopped = true;
        if (::ptrace(PTRACE_CONT, tid, 0, 0) != 0) {
          return sys_error("ptrace continue of stopped thread {}", tid);
        }
        st = wait_stop(tid);
        if (!st) {
          seized.erase(tid);
          continue;
        }
      }
      auto regs = get_regs(tid);
      if (!regs) {
        return std::move(regs).error();
      }
      t.regs = *regs;
      // The main thread first: restore recreates the others from it.
      if (tid == pid) {
        s.threads_.insert(s.threads_.begin(), t);
      } else {
        s.threads_.push_back(t);
      }
      // A stop that is a signal being delivered would lose that signal when we resume.
      if (WSTOPSIG(*st) != SIGTRAP && (*st >> 16) == 0) {
        return Error(EAGAIN, fmt::format("thread {} stopped for signal {} while freezing; retry",
                                         tid, WSTOPSIG(*st)));
      }
    }
    if (!fresh) {
      return s;
    }
  }
  return Error(EAGAIN, fmt::format("process {} keeps creating threads; could not freeze it", pid));
}

PtraceSession::PtraceSession(PtraceSession&& o) noexcept
    : pid_(o.pid_),
      threads_(std::move(o.threads_)),
      syscall_insn_(o.syscall_insn_),
      released_(o.released_),
      abandoned_(o.abandoned_) {
  o.released_ = true;
}

PtraceSession::~PtraceSession() {
  if (!released_ && !abandoned_) {
    (void)resume();
  }
}

Status PtraceSession::resume() {
  Status result;
  for (auto& t : threads_) {
    // Our injected calls may have run since the stop: re-issue the interrupted call ourselves.
    auto regs = resumable_regs(t.regs, false);
    if (static_cast<long>(t.regs.rax) == kErestartRestartBlock &&
        static_cast<long>(t.regs.orig_rax) >= 0) {
      regs = t.regs;
      regs.rax = SYS_restart_syscall;  // same process: the kernel's restart block is intact
      regs.rip -= 2;
      regs.orig_rax = static_cast<unsigned long long>(-1);
    }
    auto s = set_regs(t.tid, regs);
    if (!s && result) {
      result = std::move(s);
    }
    if (::ptrace(PTRACE_DETACH, t.tid, 0, 0) != 0 && result) {
      result = sys_error("detaching from thread {}", t.tid);
    }
  }
  released_ = true;
  return result;
}

Result<long> PtraceSession::remote_syscall(pid_t tid, long nr, long a0, long a1, long a2, long a3,
                                           long a4, long a5) {
  if (syscall_insn_ == 0) {
    return user_error("no syscall instruction found in process {}", pid_);
  }
  auto saved = get_regs(tid);
  if (!saved) {
    return std::move(saved).error();
  }
  uint64_t old_mask = 0, all = ~0ull;
  ::ptrace(PTRACE_GETSIGMASK, tid, sizeof old_mask, &old_mask);
  ::ptrace(PTRACE_SETSIGMASK, tid, sizeof all, &all);  // no handler may run mid-injection
  auto result = remote::run_syscall_from(tid, *saved, syscall_insn_, nr, {a0, a1, a2, a3, a4, a5});
  VOS_TRY(set_regs(tid, *saved), "restoring registers of thread {}", tid);
  ::ptrace(PTRACE_SETSIGMASK, tid, sizeof old_mask, &old_mask);
  return result;
}

}  // namespace vos::capture
