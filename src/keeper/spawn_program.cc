// Host side (keeper).
//
// Why posix_spawn and not fork + exec: glibc's posix_spawn creates the child with
// CLONE_VM|CLONE_VFORK, so the keeper's address space (a copy of the whole vos CLI) is not
// duplicated and neither side pays copy-on-write faults before the exec. That was about a quarter
// of `vos run`'s start-up cost. Everything the child did between fork and exec maps onto a spawn
// attribute: the signal mask, SIGPIPE back to default, the process group, the environment
// (built here, since the child may not allocate), and closing everything above stderr.
#include "keeper/spawn_program.h"

#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
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

// posix_spawn's attribute and file-action objects, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

Result<pid_t> spawn_program(const std::vector<std::string>& argv, std::vector<std::string> env,
                            bool own_process_group) {
  std::vector<std::string> args = argv;
  std::vector<char*> arg_ptrs = pointers(args);
  std::vector<char*> env_ptrs = pointers(env);

  SpawnSetup s;
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  // The keeper blocks the signals it reads through a signalfd; the program starts with none.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&s.attr, &none);
  // The keeper ignores SIGPIPE, and an ignored signal would stay ignored across exec.
  sigset_t to_default;
  sigemptyset(&to_default);
  sigaddset(&to_default, SIGPIPE);
  // glibc's spawn child sets its two internal signals (32 and 33, below SIGRTMIN) to SIG_IGN, which
  // the exec would pass on to the program: a visible difference, and one an image would record.
  // sigaddset refuses those two numbers, so their bits are set directly.
  for (int sig = 32; sig < SIGRTMIN; ++sig) {
    constexpr int kBits = 8 * sizeof(unsigned long);
    to_default.__val[(sig - 1) / kBits] |= 1UL << ((sig - 1) % kBits);
  }
  posix_spawnattr_setsigdefault(&s.attr, &to_default);
  if (own_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&s.attr, 0);
  }
  posix_spawnattr_setflags(&s.attr, flags);
  // Only stdin/stdout/stderr pass to the program: anything else inherited from the caller is a
  // half of something outside vos that could never be restored.
  if (int e = posix_spawn_file_actions_addclosefrom_np(&s.actions, 3); e != 0) {
    errno = e;
    return sys_error("preparing to start {}", argv[0]);
  }
  pid_t pid = 0;
  int e = ::posix_spawnp(&pid, arg_ptrs[0], &s.actions, &s.attr, arg_ptrs.data(), env_ptrs.data());
  if (e == ENOEXEC) {
    // execvp runs a script without "#!" with /bin/sh; posix_spawnp does not, so do it here.
    args.insert(args.begin(), "/bin/sh");
    arg_ptrs = pointers(args);
    e = ::posix_spawn(&pid, arg_ptrs[0], &s.actions, &s.attr, arg_ptrs.data(), env_ptrs.data());
  }
  if (e != 0) {
    errno = e;
    return sys_error("cannot run {}", argv[0]);
  }
  return pid;
}

}  // namespace vos::keeper
