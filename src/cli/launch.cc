// Host side (CLI).
#include "cli/launch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "capture/proc_files.h"

namespace vos::cli {

namespace {

pid_t g_forward_to = 0;

void forward_signal(int sig) {
  if (g_forward_to > 0) {
    ::kill(g_forward_to, sig);
  }
}

// The keeper writes one line with one write and nothing after it, so this may read in blocks.
std::string read_line(int fd) {
  std::string s;
  char buf[256];
  while (s.find('\n') == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return s;
    }
    s.append(buf, static_cast<size_t>(n));
  }
  return s.substr(0, s.find('\n'));
}

pid_t outer_pid_of_child(pid_t keeper) {
  auto children = capture::read_text_file(fmt::format("/proc/{}/task/{}/children", keeper, keeper));
  return children ? static_cast<pid_t>(std::atoi(children->c_str())) : 0;
}

int exit_code_for(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return WEXITSTATUS(wait_status);
  }
  if (WIFSIGNALED(wait_status)) {
    // Die the same way, so a shell sees what it would have seen without vos.
    int sig = WTERMSIG(wait_status);
    ::signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(sig);
    return 128 + sig;
  }
  return 1;
}

// The program has ended (or was checkpointed with --kill): the CLI's exit code.
int finish_foreground(const LaunchOptions& opts, const keeper::KeeperStatus& st) {
  if (st.kind == 1) {
    if (::isatty(2)) {  // never into a file the program writes: the image records its size
      std::fprintf(stderr, "vos: %s was checkpointed and stopped\n", opts.name.c_str());
    }
    return 0;
  }
  struct stat err_st {};
  if (st.kind == 2 && (::fstat(2, &err_st) != 0 || !S_ISREG(err_st.st_mode))) {
    // Not into a regular file: it may be one the program writes, whose size the image records.
    std::fprintf(stderr, "vos: %s was ended by vos: %.*s\n", opts.name.c_str(),
                 static_cast<int>(sizeof st.why), st.why);
  }
  return exit_code_for(st.wait_status);
}

}  // namespace

std::string default_name(const std::string& program) {
  std::string base = program.substr(program.rfind('/') + 1);
  for (char& c : base) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      c = '_';
    }
  }
  for (int n = 1;; ++n) {
    std::string name = fmt::format("{}-{}", base, n);
    if (!keeper::name_in_use(name)) {
      return name;
    }
  }
}

int launch(const LaunchOptions& opts, const std::function<void(keeper::KeeperPipes)>& keeper_body) {
  auto rd = keeper::ensure_run_dir();
  if (!rd) {
    std::fprintf(stderr, "vos: %s\n", rd.error().describe().c_str());
    return 1;
  }
  int ready[2], status[2], ack[2];
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(status, O_CLOEXEC) != 0 ||
      ::pipe2(ack, O_CLOEXEC) != 0) {
    std::perror("vos: pipe");
    return 1;
  }
  int verdict[2] = {-1, -1};
  pid_t checker = -1;
  if (opts.parallel_check) {
    // A process, not a thread: once this process has unshared its pid namespace it may not
    // create threads, and the keeper's threads would take pids of the program's namespace.
    if (::pipe2(verdict, O_CLOEXEC) != 0) {
      std::perror("vos: pipe");
      return 1;
    }
    std::fflush(nullptr);
    checker = ::fork();
    if (checker == 0) {
      ::close(verdict[0]);
      auto r = opts.parallel_check();
      std::string line = r ? "OK\n" : "ERR " + r.error().describe() + "\n";
      (void)!::write(verdict[1], line.data(), line.size());
      ::_exit(0);
    }
    ::close(verdict[1]);
    verdict[1] = -1;
  }
  if (opts.detach) {
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::close(null);
  }
  auto ns = keeper::enter_namespaces(opts.clocks);
  if (!ns) {
    std::fprintf(stderr, "vos: %s\n", ns.error().describe().c_str());
    return 1;
  }
  std::fflush(nullptr);
  pid_t keeper_pid = ::fork();
  if (keeper_pid < 0) {
    std::perror("vos: fork");
    return 1;
  }
  if (keeper_pid == 0) {
    ::close(ready[0]);
    ::close(status[0]);
    ::close(ack[1]);
    keeper_body({ready[1], status[1], ack[0], opts.detach || opts.own_session, verdict[0]});
    ::_exit(1);
  }
  ::close(ready[1]);
  ::close(status[1]);
  ::close(ack[0]);
  if (opts.after_fork) {
    opts.after_fork();
  }
  if (verdict[0] >= 0) {
    ::close(verdict[0]);  // the keeper has it
  }
  std::string line = read_line(ready[0]);
  if (checker > 0) {
    ::waitpid(checker, nullptr, 0);
  }
  if (line.rfind("OK ", 0) != 0) {
    std::string msg =
        line.rfind("ERR ", 0) == 0 ? line.substr(4) : "the keeper died while starting";
    std::fprintf(stderr, "vos: %s of %s failed: %s\n", opts.verb, opts.name.c_str(), msg.c_str());
    ::waitpid(keeper_pid, nullptr, 0);
    return msg.find("cannot run") != std::string::npos ? 127 : 1;
  }
  keeper::Entry entry = opts.entry;
  entry.name = opts.name;
  entry.keeper_pid = keeper_pid;
  entry.inner_pid = std::atoi(line.c_str() + 3);
  entry.pid = outer_pid_of_child(keeper_pid);
  entry.started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  auto w = keeper::write_entry(entry);
  ::close(ack[1]);  // the keeper may now finish whenever the program does
  if (!w) {
    std::fprintf(stderr, "vos: warning: %s\n", w.error().describe().c_str());
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - opts.started)
          .count();
  if (opts.detach) {
    if (opts.json) {
      nlohmann::json j = {{"name", opts.name}, {"pid", entry.pid}, {"restore_ms", ms}};
      if (std::string(opts.verb) == "run") {
        j.erase("restore_ms");
        j["start_ms"] = ms;
      }
      std::printf("%s\n", j.dump().c_str());
    } else if (::isatty(2)) {
      // Only to a terminal: stdout and stderr are often the program's own output files
      // (vos run -d -- prog > out), where a line from vos would corrupt them.
      std::fprintf(stderr, "vos: %s %s (pid %d)\n",
                   std::string(opts.verb) == "run" ? "started" : "restored", opts.name.c_str(),
                   entry.pid);
    }
    return 0;
  }
  if (opts.json) {
    std::fprintf(
        stderr, "%s\n",
        nlohmann::json({{"name", opts.name}, {"pid", entry.pid}, {"ms", ms}}).dump().c_str());
  }
  // Foreground: stand in for the program. In our process group it gets the terminal's signals
  // itself; in a session of its own (restored from a detached run) vos passes them on.
  g_forward_to = entry.pid;
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  for (int sig : {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) {
    ::sigaction(sig, &sa, nullptr);
  }
  for (int sig : {SIGINT, SIGQUIT}) {
    if (opts.own_session) {
      ::sigaction(sig, &sa, nullptr);
    } else {
      ::signal(sig, SIG_IGN);
    }
  }
  keeper::KeeperStatus st{};
  ssize_t n;
  do {
    n = ::read(status[0], &st, sizeof st);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof st) {
    // The keeper has unregistered the program and has nothing left to do but exit. Its exit
    // tears down the mount and pid namespaces, which waits for RCU grace periods: 0.2 ms on an
    // idle machine, over 5 ms on a busy one. Nothing we report depends on it, so we do not wait;
    // the keeper is reparented to init (or the caller's subreaper) and reaped there. Its copies
    // of our stdout/stderr are closed before that teardown, so a caller reading our output
    // still sees EOF as soon as the program's output ends.
    int code = finish_foreground(opts, st);
    // Nor do we unwind: the caller is waiting for our exit, and the destructors of everything
    // main() built (the command line parser's option tree, the C++ runtime's objects) only free
    // memory that the exit frees anyway.
    std::fflush(nullptr);
    ::_exit(code);
  }
  while (::waitpid(keeper_pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  std::fprintf(stderr, "vos: the keeper of %s ended unexpectedly\n", opts.name.c_str());
  return 1;
}

}  // namespace vos::cli
