// Host side (keeper: capture and restore). Working inside another process from outside: its
// registers, system calls run in one of its stopped threads, and copies of its descriptors.
// Capture uses these on a frozen program, restore on the half-built one it finishes.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <cstdint>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vos::remote {

using SyscallArgs = std::array<long, 6>;

Result<user_regs_struct> get_regs(pid_t tid);
Status set_regs(pid_t tid, const user_regs_struct& regs);

// Waits for traced thread `tid` to report a stop; returns the raw wait status. Fails (ESRCH)
// if it exited instead.
Result<int> wait_stop(pid_t tid);

// Runs system call `nr` in stopped thread `tid` through the `syscall` instruction at
// `syscall_insn`, stopping again at syscall exit (so nothing after that instruction runs).
// Returns the kernel's result; the thread's registers are left as at that exit.
Result<long> run_syscall_at(pid_t tid, uint64_t syscall_insn, long nr, const SyscallArgs& args);

// The same from registers the caller already read (`regs`: the thread's registers now).
Result<long> run_syscall_from(pid_t tid, const user_regs_struct& regs, uint64_t syscall_insn,
                              long nr, const SyscallArgs& args);

// One system call for run_syscalls_overlapped.
struct InjectedCall {
  pid_t tid = 0;
  uint64_t syscall_insn = 0;
  long nr = 0;
  SyscallArgs args{};
  long result = 0;  // set by run_syscalls_overlapped
};

// Runs each call (each in a different stopped thread, of one process or several) as
// run_syscall_from does, all at once: every thread is let into its call before the first is
// waited for, so that their round trips through the scheduler overlap instead of adding up. Each
// thread's registers and signal mask are as before afterwards, also when it fails.
Status run_syscalls_overlapped(std::vector<InjectedCall>& calls);

// A copy of process `pid`'s descriptor `fd` (pidfd_getfd): the same open file, for vos to use
// without disturbing the program's own descriptor.
Result<UniqueFd> grab_fd(pid_t pid, int fd);

}  // namespace vos::remote
