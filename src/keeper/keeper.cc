// Host side (keeper). Serving the program once it runs: requests on the control socket, signals
// sent to the keeper (forwarded: the program's pid inside its namespace is the keeper's host pid,
// so a `kill` aimed at the pid the program reports reaches the keeper), and the program's end.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "capture/tree_checkpoint.h"
#include "image/page_codec.h"
#include "keeper/keeper_state.h"
#include "keeper/namespaces.h"
#include "keeper/progress_reporter.h"
#include "keeper/registry.h"

namespace vos::keeper {

void unregister(const Keeper& k, bool keep_lazy_stats) {
  remove_entry(k.name, keep_lazy_stats);
}

std::string Keeper::who() const {
  return fmt::format("process {}", program_host > 0 ? program_host : program);
}

void Keeper::note(const std::string& line) const {
  std::string s = line + "\n";
  (void)!::write(pipes.note_fd, s.data(), s.size());
}

void Keeper::fail_start(const Error& e) const {
  std::string line = "ERR " + e.describe() + "\n";
  (void)!::write(pipes.ready_fd, line.data(), line.size());
  if (control.valid()) {
    ::unlink(socket_path(name).c_str());
  }
  ::_exit(1);
}

Status Keeper::open_control() {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) {
    return sys_error("socket");
  }
  std::string path = socket_path(name);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return user_error("control socket path too long: {}", path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  mode_t old = ::umask(077);
  int r = ::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (r != 0) {
    return sys_error("binding control socket {}", path);
  }
  if (::listen(s.get(), 8) != 0) {
    return sys_error("listen on {}", path);
  }
  control = std::move(s);
  return {};
}

void Keeper::adopt_program(pid_t pid) {
  program = pid;
  if (host) {
    if (auto h = host->host_pid_of(pid); h) {
      program_host = *h;
    }
  }
  watch.emplace(pid);
  watch->add_helper(lazy_watchdog);
  watch->rescan();
  // Out of the caller's process group, which the program now leads or shares: Ctrl-C and the
  // other signals of the terminal go to the program, not to the keeper.
  ::setpgid(0, 0);
  // Whatever runs out of memory first, the keeper goes before the program: its death only fails
  // what it was doing (raising one's own score needs no privilege).
  if (int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); fd >= 0) {
    (void)!::write(fd, "1000", 4);
    ::close(fd);
  }
}

nlohmann::json Keeper::handle(const nlohmann::json& req, int conn) {
  std::string cmd = req.value("cmd", "");
  if (cmd == "info") {
    return {{"ok", true}, {"name", name}, {"pid", program}, {"host_pid", program_host}};
  }
  if (cmd == "checkpoint") {
    return checkpoint(req, conn);
  }
  return {{"ok", false}, {"error", "unknown request '" + cmd + "'"}};
}

namespace {

std::string host_pids(const HostView* host, const std::vector<pid_t>& pids) {
  std::string out;
  for (pid_t p : pids) {
    pid_t shown = p;
    if (host != nullptr) {
      if (auto h = host->host_pid_of(p); h) {
        shown = *h;
      }
    }
    out += (out.empty() ? "" : " ") + std::to_string(shown);
  }
  return out;
}

}  // namespace

bool Keeper::in_terminal_foreground() const {
  // In the host's numbering: a group outside the program's namespace (vos run's, the shell's
  // job) reads as 0 from inside it.
  std::string path = fmt::format("{}/stat", program_host);
  int fd = ::openat(host->proc_fd(), path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  char buf[1024] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  std::string stat(buf, n > 0 ? static_cast<size_t>(n) : 0);
  auto close = stat.rfind(')');
  long pgrp = 0, tpgid = 0;
  if (close == std::string::npos ||
      std::sscanf(stat.c_str() + close + 2, "%*c %*d %ld %*d %*d %ld", &pgrp, &tpgid) != 2) {
    return false;
  }
  return tpgid > 0 && pgrp == tpgid;
}

nlohmann::json Keeper::checkpoint(const nlohmann::json& req, int conn) {
  auto refuse = [](const std::string& why) {
    return nlohmann::json{{"ok", false}, {"error", why}};
  };
  watch->rescan();
  capture::CheckpointOptions opts;
  opts.image_path = req.value("image", "");
  opts.kill = req.value("kill", false);
  auto codec = image::parse_codec(req.value("compress", std::string("none")));
  if (!codec) {
    return refuse(codec.error().describe());
  }
  opts.codec = *codec;
  opts.name = name;
  opts.who = who();
  opts.host_pid_of = [this](pid_t p) {
    auto h = host->host_pid_of(p);
    return h ? *h : 0;
  };
  opts.log = log_path(name);
  opts.tty_foreground = in_terminal_foreground();
  if (console) {
    opts.console_rdev = console_rdev;
    opts.console_state = [this, kill = opts.kill] { return console_state(!kill); };
  }
  if (auto own = host->own_pid(); own) {
    opts.writer_pid = *own;
  }
  opts.pause_at = req.value("pause_at", "");
  if (auto last = last_pid(); last) {
    opts.ns_last_pid = *last;
  }
  opts.incremental = req.value("incremental", false);
  // (A CLI of before the field sends none; no ns file: a kernel without IPC namespaces.)
  struct stat ipc {};
  opts.own_ipc_namespace = ::stat(fmt::format("/proc/{}/ns/ipc", program).c_str(), &ipc) == 0 &&
                           static_cast<uint64_t>(ipc.st_ino) != req.value("ipc_ns", uint64_t{0});
  opts.precopy = req.value("precopy", true);
  opts.parent = req.value("parent", "");
  std::string page_cache = req.value("page_cache", std::string("auto"));
  opts.page_cache = page_cache == "yes"  ? capture::CheckpointOptions::PageCache::kUse
                    : page_cache == "no" ? capture::CheckpointOptions::PageCache::kBypass
                                         : capture::CheckpointOptions::PageCache::kAuto;
  opts.files.with_files = req.value("with_files", false);
  opts.files.limit = req.value("file_data_limit", fds::FileContentPolicy::kDefaultLimit);
  // Said before the program is killed, so the CLI that stands in for it knows why it ended.
  opts.before_kill = [this](const std::string& image) {
    note(fmt::format("{} {}", note::kCheckpointed, image));
  };
  capture::CheckpointProgress progress;
  opts.progress = &progress;
  std::optional<ProgressReporter> reporter;
  reporter.emplace(conn, req.value("progress", false), progress);
  // A program of several processes (children, or processes it left) is checkpointed as a tree;
  // its first process alone, as before (pre-copy, incremental).
  bool tree = !watch->others().empty() || !watch->root_alive();
  std::set<pid_t> not_program = {1, ::getpid()};
  if (lazy_watchdog > 0) {
    not_program.insert(lazy_watchdog);
  }
  auto stats = tree ? capture::checkpoint_tree(watch->root_alive() ? program : 0, not_program, opts,
                                               tree_bases)
                    : capture::checkpoint(program, opts, base);
  reporter.reset();
  if (!stats) {
    return refuse(stats.error().describe());
  }
  killed = opts.kill;
  if (killed && stats->file_locks) {
    reap_before_reply = stats->tids;
  }
  nlohmann::json phases = nlohmann::json::array();
  for (const auto& [step, ms] : stats->phases) {
    phases.push_back({{"step", step}, {"ms", ms}});
  }
  return {{"ok", true},
          {"phases", phases},
          {"image", stats->image},
          {"pause_ms", stats->pause_ms},
          {"background_cpu", stats->background_cpu},
          {"stops_ms", stats->stops_ms},
          {"page_cache_bypassed", stats->page_cache_bypassed},
          {"total_ms", stats->total_ms},
          {"bytes", stats->bytes},
          {"pages", stats->pages},
          {"pages_copied", stats->pages_copied},
          {"pages_inherited", stats->pages_inherited},
          {"parent", stats->parent.empty() ? nlohmann::json() : nlohmann::json(stats->parent)},
          {"note", stats->note},
          {"threads", stats->threads},
          {"processes", stats->processes},
          {"compress", image::codec_name(static_cast<uint32_t>(stats->codec))},
          {"pages_logical_bytes", stats->pages_logical_bytes},
          {"pages_stored_bytes", stats->pages_stored_bytes}};
}

void Keeper::serve_one() {
  UniqueFd c(::accept4(control.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!c.valid()) {
    return;
  }
  std::string req;
  char buf[4096];
  while (req.find('\n') == std::string::npos) {
    ssize_t n = ::read(c.get(), buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    req.append(buf, static_cast<size_t>(n));
  }
  nlohmann::json reply;
  try {
    auto parsed = nlohmann::json::parse(req);
    if (parsed.value("cmd", "") == "attach") {
      if (!console) {
        reply = {{"ok", false},
                 {"error", fmt::format("{} has no terminal of vos to attach to: it was started "
                                       "without a terminal on its stdin, or with --no-pty",
                                       name)}};
      } else {
        console->attach(std::move(c),
                        {parsed.value("rows", 0), parsed.value("cols", 0),
                         parsed.value("shared", false), parsed.value("redraw", true)});
        return;  // the connection is the console's now
      }
    } else {
      reply = handle(parsed, c.get());
    }
  } catch (const nlohmann::json::exception& e) {
    reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
  }
  // The killed threads are still ours as tracer: wait for each, or init can never reap them.
  auto reap = [this](std::vector<pid_t> tids) {
    bool leader = false;
    for (;;) {
      int st = 0;
      pid_t r = ::waitpid(-1, &st, __WALL);
      if (r > 0 && r == lazy_watchdog) {
        watch->remove_helper(r);
        lazy_watchdog = 0;
      }
      leader = leader || r == program;
      std::erase(tids, r);
      if ((leader && tids.empty()) || (r < 0 && errno != EINTR)) {
        break;
      }
    }
  };
  if (killed) {
    // The name is free again before vos checkpoint returns, so that a restore may follow at once.
    unregister(*this, false);
    if (!reap_before_reply.empty()) {
      // And so are its locks.
      reap(std::move(reap_before_reply));
      reap_before_reply.clear();
      killed = false;
    }
  }
  std::string out = reply.dump() + "\n";
  (void)!::write(c.get(), out.data(), out.size());
  if (killed) {
    reap({});
    killed = false;
  }
}

void Keeper::on_processes_changed() {
  watch->rescan();
  if (!watch->root_alive() && !first_end_told) {
    first_end_told = true;
    if (console) {
      console->program_ended(false);
    }
    // A lazy restore goes on while other processes of the program live (its children need
    // their memory too); finish() ends it.
    if (lazy && watch->empty()) {
      if (std::string why = lazy->finish(); !why.empty()) {
        note(fmt::format("{} {}", note::kEnded, why));
      }
      lazy.reset();
      stop_lazy_watchdog(*this);
    }
    if (!watch->empty()) {
      note(fmt::format("{} {}", note::kLeft, host_pids(host ? &*host : nullptr, watch->others())));
    }
  }
  if (watch->empty()) {
    finish();
  }
}

void Keeper::finish() {
  bool lazy_failed = false;
  if (lazy) {
    if (std::string why = lazy->finish(); !why.empty()) {
      note(fmt::format("{} {}", note::kEnded, why));
      lazy_failed = true;
    }
    lazy.reset();
  }
  stop_lazy_watchdog(*this);
  if (console) {
    console->program_ended(true);
  }
  unregister(*this, lazy_failed);
  note(note::kDone);
  ::_exit(0);
}

void Keeper::loop() {
  UniqueFd sigfd = keeper_signalfd();
  std::vector<pollfd> fds;
  while (true) {
    on_processes_changed();
    fds.clear();
    fds.push_back({sigfd.get(), POLLIN, 0});
    fds.push_back({control.get(), POLLIN, 0});
    watch->add_pollfds(fds);
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      continue;
    }
    if (fds[0].revents & POLLIN) {
      forward_signals(*this, sigfd.get());
      reap_helpers(*this);
    }
    watch->forget_ended(fds);
    if (fds[1].revents & POLLIN) {
      serve_one();
    }
  }
}

}  // namespace vos::keeper
