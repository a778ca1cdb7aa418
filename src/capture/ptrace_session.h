// Host side (keeper). Seizes every thread of a process and stops it; the destructor always lets
// the threads go again (or they die with the process), so no path leaves a program frozen.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <cstdint>
#include <set>
#include <vector>

#include "base/result.h"
#include "remote/remote_calls.h"

namespace vos::capture {

struct ThreadStop {
  pid_t tid = 0;
  user_regs_struct regs{};     // as found at the stop
  bool group_stopped = false;  // in a job-control stop (Ctrl-Z, SIGSTOP) when seized
};

class PtraceSession {
 public:
  // Seizes and interrupts all threads of `pid`, looping until no new thread appears. Threads in
  // `interrupted` the caller has already seized and interrupted (several processes at once:
  // their stops overlap); they are only waited for.
  static Result<PtraceSession> freeze(pid_t pid, const std::set<pid_t>& interrupted = {});
  PtraceSession(PtraceSession&&) noexcept;
  PtraceSession& operator=(PtraceSession&&) = delete;
  ~PtraceSession();

  pid_t pid() const { return pid_; }
  std::vector<ThreadStop>& threads() { return threads_; }
  // The process was stopped by job control (Ctrl-Z, SIGSTOP) when frozen; it stays so when
  // resumed (the kernel puts a detached thread of a stopped group back in its stop).
  bool group_stopped() const { return !threads_.empty() && threads_.front().group_stopped; }

  // Runs one system call inside thread `tid` (which must be stopped) through a `syscall`
  // instruction at `syscall_insn`; returns the kernel's result (negative errno on failure).
  Result<long> remote_syscall(pid_t tid, long nr, long a0 = 0, long a1 = 0, long a2 = 0,
                              long a3 = 0, long a4 = 0, long a5 = 0);
  void set_syscall_insn(uint64_t addr) { syscall_insn_ = addr; }
  uint64_t syscall_insn() const { return syscall_insn_; }

  // Leaves the threads stopped and detached from nothing: the caller kills the process next.
  void abandon() { abandoned_ = true; }
  // Resumes every thread with the given registers (already rewritten to restart syscalls).
  Status resume();

 private:
  explicit PtraceSession(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::vector<ThreadStop> threads_;
  uint64_t syscall_insn_ = 0;
  bool released_ = false;
  bool abandoned_ = false;
};

// Registers that resume an interrupted system call in a fresh process, or after our own
// injected calls, without relying on the kernel's restart bookkeeping: the syscall is re-issued
// (nanosleep with the remaining time when the kernel gave it to us) and never returns EINTR
// because of vos.
user_regs_struct resumable_regs(const user_regs_struct& r, bool deliverable_signal_pending);

}  // namespace vos::capture
