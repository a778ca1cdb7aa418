// Host side (keeper). Starting the program (vos run) or rebuilding it (vos restore), then serving
// it (keeper.cc). The keeper runs in init's first child, in the program's namespaces.
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "abi/kernel_uapi.h"
#include "base/hex.h"
#include "keeper/keeper_state.h"
#include "keeper/namespaces.h"
#include "keeper/registry.h"
#include "keeper/spawn_program.h"
#include "keeper/tree_pacing.h"
#include "restore/terminal_restore.h"

namespace vos::keeper {

namespace {

Keeper start_keeper(const std::string& name, KeeperPipes pipes) {
  block_keeper_signals();
  Keeper k;
  k.name = name;
  k.pipes = pipes;
  k.host.emplace(HostView::adopt(pipes.host_proc_fd));
  return k;
}

// The program holds its own copies of the caller's stdio; the keeper must not, or a caller reading
// `vos restore -d` / `vos run -d` through a pipe would wait for the keeper's end of it forever.
void release_caller_stdio() {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) {
    return;
  }
  for (int fd = 0; fd <= 2; ++fd) {
    ::dup3(null_fd, fd, 0);
  }
  ::close(null_fd);
}

void reset_signals_for_program() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
}

}  // namespace

void report_running(Keeper& k) {
  release_caller_stdio();
  auto keeper_host = k.host->own_pid();
  auto init_host = k.host->host_pid_of(1);
  Entry& e = k.pipes.entry;
  e.name = k.name;
  e.pid = k.program_host;
  e.inner_pid = k.program;
  e.keeper_pid = keeper_host ? *keeper_host : 0;
  e.init_pid = init_host ? *init_host : 0;
  e.uid = ::getuid();
  e.started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  if (auto w = write_entry(e); !w) {
    ::kill(k.program, SIGKILL);
    k.fail_start(w.error());
  }
  std::string line = fmt::format("OK {} {} {}\n", k.program, k.program_host, e.keeper_pid);
  (void)!::write(k.pipes.ready_fd, line.data(), line.size());
  ::close(k.pipes.ready_fd);
  k.loop();
}

void keeper_for_new_program(const std::string& name, const std::vector<std::string>& argv,
                            std::vector<std::string> env, KeeperPipes pipes) {
  Keeper k = start_keeper(name, pipes);
  // The program's pid inside its namespace is the keeper's host pid: a number no other live
  // process on the host has, so two programs under vos never see the same pid (a JVM names its
  // /tmp/hsperfdata file after it), and a signal sent to it from the host reaches the keeper,
  // which passes it on.
  auto own = k.host->own_pid();
  if (own && *own > 2) {
    (void)set_next_pid(*own);
  }
  auto child = spawn_program(argv, std::move(env), pipes.own_session, pipes.console_master >= 0);
  if (!child) {
    k.fail_start(child.error());
  }
  k.adopt_program(*child);
  k.start_console("", true);
  // Only now: binding the socket (a file in RUN_DIR, on disk on some systems) overlaps with the
  // program's own start instead of delaying it.
  if (auto c = k.open_control(); !c) {
    ::kill(k.program, SIGKILL);
    k.fail_start(c.error());
  }
  report_running(k);
}

namespace {

// What every restore does once the program runs.
void finish_started_restore(Keeper& k, restore::LoadedImage& img, pid_t pid) {
  k.program = pid;
  // (A thread: only now that every pid of the program is taken.)
  k.start_console(from_hex(img.proc.console.screen));
  // A stopped job stops again (with SIGSTOP: a handler of the signal that stopped it, say
  // vim's SIGTSTP, must not run twice).
  if (img.proc.stopped) {
    ::kill(img.proc.pid, SIGSTOP);
  }
  for (const auto& p : img.proc.processes) {
    if (p.stopped) {
      ::kill(p.pid, SIGSTOP);
    }
  }
  if (img.proc.ns_last_pid > 0) {
    // The program's next child gets the pid it would have had.
    (void)set_next_pid(img.proc.ns_last_pid + 1);
  }
  if (restore::terminal_size_changed(img.proc)) {
    ::kill(pid, SIGWINCH);  // it redraws for the terminal it has now
  }
  // The program has its pages (a lazy restore's server keeps its own copy of the fds): free the
  // decompressed copies.
  img.pages.owned.reset();
  for (auto& p : img.parents) {
    p.pages.owned.reset();
  }
}

// Serves the memory of the processes `targets` names until all of it is in; meanwhile a
// watchdog ends the program should the keeper die.
void start_lazy_restore(Keeper& k, const restore::LoadedImage& img,
                        std::vector<restore::LazyTarget> targets) {
  // Every process of the program: the keeper and init are in its pid namespace, and kill(-1)
  // spares the caller and the namespace's init. Forked children are the program too.
  auto end_program = [] { ::kill(-1, SIGKILL); };
  if (auto w = start_lazy_watchdog(k); !w) {
    end_program();  // it runs already, without its memory
    k.fail_start(w.error());
  }
  std::string stats_path = lazy_stats_path(k.name);
  ::unlink(stats_path.c_str());  // left by an earlier failed lazy restore of this name
  pid_t watchdog = k.lazy_watchdog;
  auto report = [stats_path, watchdog](const restore::LazyStats& st) {
    if (st.error.empty() && watchdog > 0) {
      ::kill(watchdog, SIGKILL);  // all memory is in: the program needs the keeper no more
    }
    nlohmann::json j = {{"faults", st.faults},
                        {"fault_pages", st.fault_pages},
                        {"zero_pages", st.zero_pages},
                        {"prefetched_pages", st.prefetched_pages},
                        {"already_in_pages", st.already_in_pages},
                        {"done_ms", st.done_ms},
                        {"error", st.error},
                        {"huge_collapsed_bytes", st.huge_collapsed_bytes},
                        {"huge_collapse_ms", st.huge_collapse_ms},
                        {"huge_collapse_error", st.huge_collapse_error}};
    (void)write_json_file(stats_path, j);
  };
  auto server = restore::LazyRestore::start(img, std::move(targets), end_program, report);
  if (!server) {
    end_program();  // it runs already, without its memory
    k.fail_start(server.error());
  }
  k.lazy = std::move(*server);
}

}  // namespace

void keeper_for_restore(const std::string& name, restore::LoadedImage& img, KeeperPipes pipes) {
  Keeper k = start_keeper(name, pipes);
  if (auto c = k.open_control(); !c) {
    k.fail_start(c.error());
  }
  int sync[2], info[2], log[2];
  if (::pipe2(sync, O_CLOEXEC) != 0 || ::pipe2(info, O_CLOEXEC) != 0 ||
      ::pipe2(log, O_CLOEXEC) != 0) {
    k.fail_start(sys_error("pipe"));
  }
  if (img.proc.console.present) {
    if (pipes.console_master < 0) {
      k.fail_start(user_error("the image has a terminal of vos and this restore made none"));
    }
    img.policy.console_path = pipes.console_slave;
    if (auto st = restore_console_input(pipes.console_master, img.proc.console); !st) {
      k.fail_start(st.error());
    }
  }
  // A process tree: its first process creates the others, paced by the keeper.
  const bool tree = !img.proc.processes.empty();
  int up[2] = {-1, -1}, go_members[2] = {-1, -1}, go_program[2] = {-1, -1}, die[2] = {-1, -1};
  if (tree && (::pipe2(up, O_CLOEXEC) != 0 || ::pipe2(go_members, O_CLOEXEC) != 0 ||
               ::pipe2(go_program, O_CLOEXEC) != 0 || ::pipe2(die, O_CLOEXEC) != 0)) {
    k.fail_start(sys_error("pipe"));
  }
  uint64_t want = static_cast<uint64_t>(img.proc.pid);
  uapi::CloneArgs ca{};
  // A child of init like the program it rebuilds: the keeper's death must not touch it.
  ca.flags = CLONE_PARENT;
  ca.set_tid = reinterpret_cast<uint64_t>(&want);
  ca.set_tid_size = 1;
  long child = ::syscall(SYS_clone3, &ca, sizeof ca);
  if (child < 0) {
    k.fail_start(sys_error("creating process with pid {}", img.proc.pid));
  }
  if (child == 0) {
    ::close(sync[1]);
    ::close(info[0]);
    ::close(log[0]);
    ::close(k.control.release());
    reset_signals_for_program();
    if (tree) {
      ::close(up[0]);
      ::close(go_members[1]);
      ::close(go_program[1]);
      ::close(die[1]);
      restore::become_tree(img, sync[0], info[1], log[1],
                           {up[1], go_members[0], go_program[0], die[0]});
    }
    restore::become_program(img, sync[0], info[1], log[1]);
  }
  ::close(sync[0]);
  ::close(info[1]);
  ::close(log[1]);
  TreePacing pacing{up[0], go_members[1], go_program[1], die[1]};
  if (tree) {
    ::close(up[1]);
    ::close(go_members[0]);
    ::close(go_program[0]);
    ::close(die[0]);
  }
  auto pid = static_cast<pid_t>(child);
  auto fail = [&](Error e) {
    ::kill(pid, SIGKILL);
    std::string detail;
    char buf[1024];
    ssize_t n;
    ::fcntl(log[0], F_SETFL, O_NONBLOCK);
    while ((n = ::read(log[0], buf, sizeof buf)) > 0) {
      detail.append(buf, static_cast<size_t>(n));
    }
    while (!detail.empty() && detail.back() == '\n') {
      detail.pop_back();
    }
    if (!detail.empty()) {
      e = Error(0, detail);
    }
    k.fail_start(e);
  };
  // EXITKILL: a keeper that dies before the program runs takes the half-built process with it;
  // the image is still there to restore from.
  if (::ptrace(PTRACE_SEIZE, pid, 0,
               PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) != 0) {
    fail(sys_error("ptrace seize of the new process"));
  }
  // The CLI checks the page data on the other core while the new process loads it (a thread
  // here would take a pid of the program's namespace); its verdict gates the program's start.
  auto join_verifier = [&]() -> Status {
    if (pipes.verdict_fd < 0) {
      return {};
    }
    std::string verdict;
    char c;
    while (::read(pipes.verdict_fd, &c, 1) == 1 && c != '\n') {
      verdict.push_back(c);
    }
    ::close(pipes.verdict_fd);
    pipes.verdict_fd = -1;
    if (verdict == "OK") {
      return {};
    }
    return user_error(
        "{}", verdict.rfind("ERR ", 0) == 0 ? verdict.substr(4) : "page data was not verified");
  };
  if (const char* at = std::getenv("VOS_TEST_PAUSE_AT");
      at != nullptr && std::string(at) == "restore") {
    std::this_thread::sleep_for(std::chrono::seconds(3));  // tests only: a kill mid-restore
  }
  (void)!::write(sync[1], "g", 1);
  ::close(sync[1]);
  std::vector<restore::FinishedRestore> done;
  if (tree) {
    auto procs = pace_tree_restore(img, pid, pacing, info[0], log[0]);
    if (!procs) {
      (void)join_verifier();
      fail(std::move(procs).error());
    }
    auto finished = restore::finish_restore_tree(*procs, img, join_verifier);
    if (!finished) {
      (void)join_verifier();
      fail(std::move(finished).error());
    }
    done = std::move(*finished);
    for (int fd : {pacing.up, pacing.go_members, pacing.go_program}) {
      ::close(fd);
    }
  } else {
    restore::RegionInfo region;
    if (::read(info[0], &region, sizeof region) != sizeof region) {
      // The new process gave up before the jump; its reason is in the log pipe.
      int st = 0;
      ::waitpid(pid, &st, __WALL);
      (void)join_verifier();
      fail(user_error("restore failed before the program could be rebuilt"));
    }
    auto finished = restore::finish_restore(pid, img, region, join_verifier);
    if (!finished) {
      (void)join_verifier();
      fail(std::move(finished).error());
    }
    done.push_back(std::move(*finished));
  }
  k.program = pid;
  std::vector<restore::LazyTarget> lazy;
  for (auto& f : done) {
    k.base_on_restored_process(img, f, tree);
    if (f.lazy_uffd.valid()) {
      lazy.push_back({f.pid, std::move(f.lazy_uffd), f.proc});
    }
  }
  if (!lazy.empty()) {
    start_lazy_restore(k, img, std::move(lazy));
  }
  finish_started_restore(k, img, pid);
  ::close(log[0]);
  ::close(info[0]);
  k.adopt_program(pid);
  report_running(k);
}

}  // namespace vos::keeper
