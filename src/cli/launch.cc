// Host side (CLI).
#include "cli/launch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/hex.h"
#include "cli/attach_client.h"
#include "console/pty.h"
#include "keeper/init_process.h"

namespace vos::cli {

namespace {

pid_t g_forward_to = 0;
// The program's output was relayed here: its last line may lack a newline (a shell's prompt).
bool g_relayed = false;

void forward_signal(int sig) {
  if (g_forward_to > 0) {
    ::kill(g_forward_to, sig);
  }
}

// Reads one line (without its newline); "" at end of file. The keeper writes each line with one
// write, so this may read in blocks; what follows the line stays in `pending`.
std::string read_line(int fd, std::string& pending) {
  char buf[512];
  while (pending.find('\n') == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      std::string rest = std::move(pending);
      pending.clear();
      return rest;
    }
    pending.append(buf, static_cast<size_t>(n));
  }
  auto nl = pending.find('\n');
  std::string line = pending.substr(0, nl);
  pending.erase(0, nl + 1);
  return line;
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

// Not into a regular file: it may be one the program writes, whose size the image records.
bool may_write_to_stderr() {
  struct stat st {};
  return ::fstat(2, &st) == 0 && !S_ISREG(st.st_mode);
}

bool starts_with(const std::string& s, const char* p) {
  return s.rfind(p, 0) == 0;
}

// What the keeper said about the program's end, read once its first process has ended.
struct EndNotes {
  std::string checkpointed;  // the image, if vos checkpoint --kill ended it
  std::string ended_why;     // why vos ended it, if it did
  std::string left;          // host pids of processes that run on under vos
  bool keeper_gone = false;  // the keeper died before it could say
};

EndNotes read_end_notes(int note_fd) {
  EndNotes n;
  std::string pending;
  while (true) {
    std::string line = read_line(note_fd, pending);
    if (line == keeper::note::kDone) {
      return n;
    }
    if (line.empty()) {
      n.keeper_gone = true;  // end of file without a word: the keeper died
      return n;
    }
    auto rest = [&](const char* tag) { return line.substr(std::strlen(tag) + 1); };
    if (starts_with(line, keeper::note::kCheckpointed)) {
      n.checkpointed = rest(keeper::note::kCheckpointed);
    } else if (starts_with(line, keeper::note::kEnded)) {
      n.ended_why = rest(keeper::note::kEnded);
    } else if (starts_with(line, keeper::note::kLeft)) {
      n.left = rest(keeper::note::kLeft);
      return n;
    }
  }
}

// Waits for init to report the program's first process; its wait status.
Result<int> wait_first_process(int init_status_fd, pid_t inner_pid) {
  keeper::ReapedChild rec{};
  while (true) {
    ssize_t n = ::read(init_status_fd, &rec, sizeof rec);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n != sizeof rec) {
      return user_error("the program's namespace ended without reporting its end");
    }
    if (rec.pid == inner_pid) {
      return rec.wait_status;
    }
  }
}

// The program's end: the CLI's exit code, as documented in `vos run --help`.
int finish_foreground(const LaunchOptions& opts, int wait_status, const EndNotes& notes) {
  if (!notes.checkpointed.empty()) {
    if (may_write_to_stderr()) {
      std::fprintf(stderr,
                   "%svos: %s was checkpointed to %s and stopped; continue it with: vos restore "
                   "%s\n",
                   g_relayed ? "\n" : "", opts.name.c_str(), notes.checkpointed.c_str(),
                   notes.checkpointed.c_str());
    }
    return kExitCheckpointed;
  }
  if (!notes.ended_why.empty() && may_write_to_stderr()) {
    std::fprintf(stderr, "vos: %s was ended by vos: %s\n", opts.name.c_str(),
                 notes.ended_why.c_str());
  }
  if (notes.keeper_gone && may_write_to_stderr()) {
    std::fprintf(stderr,
                 "vos: %s: its keeper had died; the program's end is all vos can report (a "
                 "program restored with --lazy is ended with its keeper: it cannot run without "
                 "the memory the keeper serves)\n",
                 opts.name.c_str());
  }
  if (!notes.left.empty() && ::isatty(2)) {
    std::fprintf(stderr,
                 "vos: %s: its first process ended; processes it started run on under "
                 "vos (host pids %s; see vos ps)\n",
                 opts.name.c_str(), notes.left.c_str());
  }
  return exit_code_for(wait_status);
}

// Where a detached program's stdio goes: a terminal or a pipe of the caller's would tie the
// program to a screen or a reader that will not stay; those become the program's log (vos logs
// NAME), /dev/null for a terminal's input. Files and pipes given on stdin stay the program's.
// A restore appends to the log the program had (its output so far stays readable).
Status detach_stdio(const std::string& name, bool restore, int stdio[3]) {
  struct stat st {};
  stdio[0] = ::isatty(0) ? ::open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
  int log = -1;
  for (int fd = 1; fd <= 2; ++fd) {
    stdio[fd] = -1;
    if (::fstat(fd, &st) != 0 || ::isatty(fd) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
      if (log < 0) {
        std::string path = keeper::log_path(name);
        log = ::open(path.c_str(),
                     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (restore ? 0 : O_TRUNC), 0600);
        if (log < 0) {
          return sys_error("creating the program's log {}", path);
        }
      }
      stdio[fd] = log;
    }
  }
  return {};
}

// The program's vos pty: for vos run from a terminal, in that terminal's mode and size; for a
// restore, in the image's mode and the size of the terminal it is restored onto (or had).
Result<std::optional<console::Pty>> make_pty(const LaunchOptions& opts) {
  bool restore = std::string(opts.verb) == "restore";
  termios mode{};
  winsize size{};
  if (restore) {
    if (opts.console == nullptr || !opts.console->present) {
      return std::optional<console::Pty>();
    }
    std::string saved = from_hex(opts.console->termios);
    if (saved.size() != sizeof mode) {
      return user_error("corrupt image: the terminal's mode is {} bytes", saved.size());
    }
    std::memcpy(&mode, saved.data(), sizeof mode);
    // The size the program knows; the terminal that attaches then sets its own, and the kernel
    // tells the program with a SIGWINCH.
    size = {opts.console->rows, opts.console->cols, 0, 0};
  } else if (opts.no_pty || !::isatty(0) || ::tcgetattr(0, &mode) != 0) {
    return std::optional<console::Pty>();
  } else {
    ::ioctl(0, TIOCGWINSZ, &size);
  }
  auto pty = console::open_pty(&mode, size.ws_row > 0 ? &size : nullptr);
  if (!pty) {
    return std::move(pty).error();
  }
  return std::optional<console::Pty>(std::move(*pty));
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
  int ready[2], note[2], reaped[2];
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(note, O_CLOEXEC) != 0 ||
      ::pipe2(reaped, O_CLOEXEC) != 0) {
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
  int stdio[3] = {-1, -1, -1};
  if (opts.detach) {
    if (auto st = detach_stdio(opts.name, std::string(opts.verb) == "restore", stdio); !st) {
      std::fprintf(stderr, "vos: %s\n", st.error().describe().c_str());
      return 1;
    }
  }
  auto pty = make_pty(opts);
  if (!pty) {
    std::fprintf(stderr, "vos: %s\n", pty.error().describe().c_str());
    return 1;
  }
  // Relayed here: in the foreground of a terminal (vos restore of an image with a pty from a
  // script runs the program on its pty with nobody attached: vos attach NAME then).
  const bool attach = pty->has_value() && !opts.detach && ::isatty(0);
  UniqueFd slave;
  if (pty->has_value()) {
    // The caller's terminal is not the program's: vos run gives the program the pty's slave
    // where it would have had the terminal, and nothing of vos keeps the terminal open.
    bool run = std::string(opts.verb) == "run";
    slave.reset(
        ::open(run ? (*pty)->slave_path.c_str() : "/dev/null", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave.valid()) {
      std::fprintf(stderr, "vos: opening %s: %s\n", (*pty)->slave_path.c_str(),
                   std::strerror(errno));
      return 1;
    }
    for (int fd = 0; fd <= 2; ++fd) {
      if (::isatty(fd)) {
        if (stdio[fd] >= 0 && stdio[fd] != stdio[fd == 1 ? 2 : 1]) {
          ::close(stdio[fd]);
        }
        stdio[fd] = slave.get();
      }
    }
  }
  auto ns = keeper::enter_namespaces(opts.clocks);
  if (!ns) {
    std::fprintf(stderr, "vos: %s\n", ns.error().describe().c_str());
    return 1;
  }
  std::fflush(nullptr);
  pid_t init_pid = ::fork();
  if (init_pid < 0) {
    std::perror("vos: fork");
    return 1;
  }
  if (init_pid == 0) {
    ::close(ready[0]);
    ::close(note[0]);
    ::close(reaped[0]);
    for (int fd = 0; fd <= 2; ++fd) {
      if (stdio[fd] >= 0) {
        ::dup3(stdio[fd], fd, 0);
      }
    }
    bool own_session = opts.detach || opts.own_session || pty->has_value();
    int master = pty->has_value() ? (*pty)->master.get() : -1;
    keeper::InitPlan plan{own_session, reaped[1], ready[1], master};
    keeper::run_init(plan, [&](int host_proc_fd) {
      ::close(reaped[1]);
      keeper::KeeperPipes pipes{ready[1], note[1], own_session, verdict[0], host_proc_fd, master};
      pipes.console_slave = pty->has_value() ? (*pty)->slave_path : "";
      pipes.entry = opts.entry;
      keeper_body(pipes);
    });
  }
  if (pty->has_value()) {
    (*pty)->master.reset();  // the keeper's and init's now
  }
  ::close(ready[1]);
  ::close(note[1]);
  ::close(reaped[1]);
  for (int fd = 0; fd <= 2; ++fd) {
    if (stdio[fd] >= 0 && stdio[fd] != slave.get() && (fd == 0 || stdio[fd] != stdio[fd - 1])) {
      ::close(stdio[fd]);
    }
  }
  slave.reset();
  if (opts.after_fork) {
    opts.after_fork();
  }
  if (verdict[0] >= 0) {
    ::close(verdict[0]);  // the keeper has it
  }
  std::string pending;
  std::string line = read_line(ready[0], pending);
  if (checker > 0) {
    ::waitpid(checker, nullptr, 0);
  }
  if (line.rfind("OK ", 0) != 0) {
    std::string msg =
        line.rfind("ERR ", 0) == 0 ? line.substr(4) : "the keeper died while starting";
    std::fprintf(stderr, "vos: %s of %s failed: %s\n", opts.verb, opts.name.c_str(), msg.c_str());
    ::waitpid(init_pid, nullptr, 0);
    return msg.find("cannot run") != std::string::npos ? 127 : 1;
  }
  // The keeper has registered the program.
  keeper::Entry entry = opts.entry;
  std::sscanf(line.c_str(), "OK %d %d %d", &entry.inner_pid, &entry.pid, &entry.keeper_pid);
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
      j["log"] = stdio[1] >= 0 || stdio[2] >= 0 ? keeper::log_path(opts.name) : "";
      j["terminal"] = pty->has_value();  // vos attach NAME shows it
      std::printf("%s\n", j.dump().c_str());
    } else if (::isatty(2)) {
      // Only to a terminal: stdout and stderr are often the program's own output files
      // (vos run -d -- prog > out), where a line from vos would corrupt them.
      std::fprintf(stderr, "vos: %s %s (pid %d)%s%s\n",
                   std::string(opts.verb) == "run" ? "started" : "restored", opts.name.c_str(),
                   entry.pid, pty->has_value() ? "; see its terminal with: vos attach " : "",
                   pty->has_value() ? opts.name.c_str() : "");
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
  if (attach) {
    // The caller's terminal shows the program's pty until the first process ends or the user
    // detaches (then the program runs on, as if started with --detach).
    AttachOptions ao;
    ao.name = opts.name;
    ao.redraw = std::string(opts.verb) == "restore";
    ao.end_with_first = true;
    auto how = attach_terminal(ao);
    if (!how) {
      std::fprintf(stderr, "vos: %s runs on, but its terminal could not be shown here: %s\n",
                   opts.name.c_str(), how.error().describe().c_str());
      ::_exit(1);
    }
    g_relayed = true;
    if (*how != AttachEnd::kFirstEnded && *how != AttachEnd::kAllEnded) {
      say_detached(opts.name, *how);
      std::fflush(nullptr);
      ::_exit(*how == AttachEnd::kKeeperGone ? 1 : 0);
    }
  }
  // init reports the first process's end even when the keeper is gone; the keeper then says
  // what vos did to it, and whether processes it left run on.
  auto status = wait_first_process(reaped[0], entry.inner_pid);
  if (!status) {
    std::fprintf(stderr, "vos: %s: %s\n", opts.name.c_str(), status.error().describe().c_str());
    return 1;
  }
  EndNotes notes = read_end_notes(note[0]);
  int code = finish_foreground(opts, *status, notes);
  // Nor do we unwind or wait for the namespace's teardown: the caller is waiting for our exit,
  // and the destructors of everything main() built only free memory that the exit frees anyway.
  std::fflush(nullptr);
  ::_exit(code);
}

}  // namespace vos::cli
