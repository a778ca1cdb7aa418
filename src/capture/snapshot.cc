// Host side (keeper).
#include "capture/snapshot.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "base/unique_fd.h"
#include "capture/capture_context.h"
#include "capture/tree_freeze.h"
#include "remote/remote_calls.h"

namespace vos::capture {

Result<Snapshot> Snapshot::take(PtraceSession& session, uint64_t syscall_insn, bool own_child) {
  pid_t pid = session.pid();
  constexpr long kCloneParent = 0x00008000;
  auto saved = remote::get_regs(pid);
  if (!saved) {
    return std::move(saved).error();
  }
  uint64_t old_mask = 0, all = ~0ull;
  ::ptrace(PTRACE_GETSIGMASK, pid, sizeof old_mask, &old_mask);
  ::ptrace(PTRACE_SETSIGMASK, pid, sizeof all, &all);
  ::ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE);
  user_regs_struct r = *saved;
  r.rip = syscall_insn;
  r.rax = SYS_clone;
  r.orig_rax = static_cast<unsigned long long>(-1);
  r.rdi = own_child ? 0 : kCloneParent;  // exit signal 0 (the parent's own with CLONE_PARENT)
  r.rsi = r.rdx = r.r10 = r.r8 = 0;
  Snapshot snap;
  Status st = remote::set_regs(pid, r);
  for (int stop = 0; st && stop < 3; ++stop) {  // enter, clone event, exit
    int status = 0;
    if (::ptrace(PTRACE_SYSCALL, pid, 0, 0) != 0 || ::waitpid(pid, &status, __WALL) != pid) {
      st = sys_error("cloning process {} for a snapshot", pid);
      break;
    }
    if ((status >> 8) == (SIGTRAP | (PTRACE_EVENT_CLONE << 8))) {
      unsigned long child = 0;
      ::ptrace(PTRACE_GETEVENTMSG, pid, 0, &child);
      snap.child_ = static_cast<pid_t>(child);
    } else if (!WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80)) {
      st = user_error("process {}: unexpected stop {:#x} while cloning", pid, status);
    }
  }
  ::ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD);
  (void)remote::set_regs(pid, *saved);
  ::ptrace(PTRACE_SETSIGMASK, pid, sizeof old_mask, &old_mask);
  if (snap.child_ > 0) {
    int status = 0;
    ::waitpid(snap.child_, &status, __WALL);  // its first stop, before any instruction
  }
  if (!st) {
    return std::move(st).error();
  }
  if (snap.child_ <= 0) {
    return user_error("process {}: clone for a snapshot reported no child", pid);
  }
  return snap;
}

Snapshot::~Snapshot() {
  if (child_ > 0) {
    ::kill(child_, SIGKILL);
    ::waitpid(child_, nullptr, __WALL);
  }
}

Status reap_in(pid_t process, pid_t child, uint64_t syscall_insn) {
  auto session = PtraceSession::freeze(process);
  if (!session) {
    // Ended (a zombie cannot be seized): its children, the snapshot too, went to init, which
    // reaps them.
    auto stat = read_tree_stat(process);
    if (!stat || stat->state == 'Z' || stat->state == 'X') {
      return {};
    }
    return std::move(session).error().context(
        fmt::format("freezing process {} to collect its snapshot", process));
  }
  // Found at the freeze; the process may have exec'd since.
  CaptureContext ctx;
  ctx.pid = process;
  UniqueFd mem(::open(fmt::format("/proc/{}/mem", process).c_str(), O_RDONLY | O_CLOEXEC));
  ctx.mem_fd = mem.get();
  if (!is_syscall_insn(ctx, syscall_insn)) {
    auto found = find_syscall_insn(ctx);
    if (!found) {
      (void)session->resume();
      return std::move(found).error().context(
          fmt::format("process {}: collecting its snapshot", process));
    }
    syscall_insn = *found;
  }
  session->set_syscall_insn(syscall_insn);
  auto r = session->remote_syscall(process, SYS_wait4, child, 0, __WALL, 0);
  auto resumed = session->resume();
  if (!r) {
    return std::move(r).error().context(
        fmt::format("process {}: collecting its snapshot", process));
  }
  if (*r != child) {
    return Error(static_cast<int>(*r < 0 ? -*r : 0),
                 fmt::format("process {}: wait4 for its snapshot {} gave {}", process, child, *r));
  }
  return resumed;
}

}  // namespace vos::capture
