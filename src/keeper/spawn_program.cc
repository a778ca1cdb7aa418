// Host side (keeper).
//
// Why a vfork-style clone and not fork + exec: with CLONE_VM|CLONE_VFORK the keeper's address
// space (a copy of the whole vos CLI) is not duplicated and neither side pays copy-on-write faults
// before the exec. That was about a quarter of `vos run`'s start-up cost.
//
// Why not glibc's posix_spawn, which does the same: its child visits all 64 signals with two
// sigaction calls each (~40 us, while the keeper waits for the exec), because it cannot know which
// ones have handlers. The keeper knows: it installs none, so only the dispositions that would
// survive the exec matter, and of those it changes only SIGPIPE's. The child below does exactly
// what the program needs and nothing else; like posix_spawn's, it shares the keeper's memory, so
// it may not allocate or take locks, and runs with every signal blocked until the exec.
#include "keeper/spawn_program.h"

#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace vos::keeper {

namespace {

// libvos.so sits beside the vos binary in a build tree, or in ../lib/vos when installed.
std::string libvos_path() {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    return "";
  }
  std::string dir(exe, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  for (const std::string& candidate : {dir + "/libvos.so", dir + "/../lib/vos/libvos.so"}) {
    if (::access(candidate.c_str(), R_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

}  // namespace

std::vector<std::string> program_environment() {
  std::vector<std::string> env;
  std::string preload;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "LD_PRELOAD=", 11) == 0) {
      preload = *e + 11;
    } else {
      env.emplace_back(*e);
    }
  }
  std::string lib = libvos_path();
  if (lib.empty()) {
    std::fprintf(stderr,
                 "vos: warning: libvos.so not found beside vos; relative sleeps without a "
                 "remaining-time pointer will restart in full after a restore\n");
  } else {
    preload = preload.empty() ? lib : lib + ":" + preload;
  }
  if (!preload.empty()) {
    env.push_back("LD_PRELOAD=" + preload);
  }
  return env;
}

namespace {

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

// What the child needs, in memory it shares with the keeper. If it cannot exec the program it
// leaves the errno and the step that failed here before it exits.
struct ChildPlan {
  char* const* argv;
  char* const* envp;
  bool own_process_group;
  bool foreground_on_tty;
  int error;
  const char* failed_step;
};

[[noreturn]] void child_failed(ChildPlan* plan, const char* step) {
  plan->error = errno;
  plan->failed_step = step;
  ::_exit(127);
}

// Sets a signal to its default action with the raw system call: glibc's sigaction refuses its two
// internal signals (32 and 33, below SIGRTMIN).
void default_action(int sig) {
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  } dfl{SIG_DFL, 0, nullptr, 0};
  ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
}

int run_child(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);
  // An ignored signal stays ignored across exec. The keeper ignores SIGPIPE; 32 and 33 are ignored
  // in anything started by glibc's posix_spawn (which may be vos itself), a visible difference and
  // one an image would record.
  for (int sig : {SIGPIPE, 32, 33}) {
    default_action(sig);
  }
  if (plan->own_process_group && ::setpgid(0, 0) != 0) {
    child_failed(plan, "setpgid");
  }
  // On its vos pty the program is the foreground job of init's session, as a shell starts one:
  // a group of its own, given the terminal (SIGTTOU is blocked here, as a shell blocks it).
  if (plan->foreground_on_tty) {
    if (::setpgid(0, 0) != 0) {
      child_failed(plan, "setpgid");
    }
    int fd = 0;
    while (fd <= 2 && ::tcsetpgrp(fd, ::getpid()) != 0) {
      ++fd;
    }
    if (fd > 2) {
      child_failed(plan, "taking its terminal's foreground (tcsetpgrp)");
    }
  }
  // Only stdin/stdout/stderr pass to the program: anything else inherited from the caller is a
  // half of something outside vos that could never be restored.
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    child_failed(plan, "close_range");
  }
  // The keeper blocks the signals it reads through a signalfd; the program starts with none.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Searches PATH like the shell, and runs a script without "#!" with /bin/sh.
  ::execvpe(plan->argv[0], plan->argv, plan->envp);
  child_failed(plan, nullptr);
}

}  // namespace

Result<pid_t> spawn_program(const std::vector<std::string>& argv, std::vector<std::string> env,
                            bool own_process_group, bool foreground_on_tty) {
  std::vector<std::string> args = argv;
  std::vector<char*> arg_ptrs = pointers(args);
  std::vector<char*> env_ptrs = pointers(env);
  ChildPlan plan{arg_ptrs.data(),
                 env_ptrs.data(),
                 own_process_group && !foreground_on_tty,
                 foreground_on_tty,
                 0,
                 nullptr};

  // execvpe builds each candidate path on the stack (up to PATH_MAX + NAME_MAX), and for a script
  // without "#!" a copy of argv: room for both, in pages that cost only once touched.
  size_t stack_size = (256 << 10) + arg_ptrs.size() * sizeof(char*);
  void* stack = ::mmap(nullptr, stack_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (stack == MAP_FAILED) {
    return sys_error("allocating a stack to start {}", argv[0]);
  }
  // No signal may run a keeper handler on the child's stack, in the keeper's memory.
  sigset_t all, before;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, &before);
  // Returns once the child has called execve successfully or exited.
  // CLONE_PARENT: the program is init's child, not the keeper's, so that the keeper's death (a
  // kill, a crash, the OOM killer) never touches it (init_process.h).
  pid_t pid = ::clone(run_child, static_cast<char*>(stack) + stack_size,
                      CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD, &plan);
  int clone_errno = errno;
  ::sigprocmask(SIG_SETMASK, &before, nullptr);
  ::munmap(stack, stack_size);
  if (pid < 0) {
    errno = clone_errno;
    return sys_error("starting {}", argv[0]);
  }
  if (plan.error != 0) {
    errno = plan.error;  // (init reaps the child)
    if (plan.failed_step != nullptr) {
      return sys_error("preparing to start {}: {}", argv[0], plan.failed_step);
    }
    return sys_error("cannot run {}", argv[0]);
  }
  return pid;
}

}  // namespace vos::keeper
