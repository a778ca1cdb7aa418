// Host side (keeper, pid 1 of the program's pid namespace).
#include "keeper/keeper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "abi/kernel_uapi.h"
#include "base/unique_fd.h"
#include "capture/checkpoint.h"
#include "image/page_codec.h"
#include "keeper/namespaces.h"
#include "keeper/progress_reporter.h"
#include "keeper/registry.h"
#include "keeper/spawn_program.h"
#include "restore/lazy_server.h"

namespace vos::keeper {

namespace {

void write_line(int fd, const std::string& s) {
  std::string line = s + "\n";
  (void)!::write(fd, line.data(), line.size());
}

[[noreturn]] void fail_start(const KeeperPipes& pipes, const std::string& name, const Error& e) {
  write_line(pipes.ready_fd, "ERR " + e.describe());
  ::unlink(socket_path(name).c_str());
  ::_exit(1);
}

Result<UniqueFd> listen_control(const std::string& name) {
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
  return s;
}

// Signals the keeper handles through a signalfd. They must be blocked, not ignored: an ignored or
// default-handled signal is dropped for a pid-namespace init.
sigset_t keeper_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

struct Keeper {
  std::string name;
  pid_t program = 0;
  KeeperPipes pipes;
  UniqueFd control;
  bool killed_by_checkpoint = false;
  capture::CheckpointBase base;  // what an incremental checkpoint builds on
  bool ended = false;            // the program was reaped while serving a request
  int end_status = 0;
  // Serving a lazy restore's memory; ended (its threads joined, its statistics written) before
  // the keeper exits, or the statistics file could be left half-written.
  std::unique_ptr<restore::LazyServer> lazy;

  // The next incremental checkpoint of a restored program builds on the image (and parents) it
  // was restored from, with writes tracked since the restore.
  void base_on_restored_image(const restore::LoadedImage& img, capture::WriteTracker tracker) {
    capture::base_from_restored(base, img.proc, restored_chain(img), std::move(tracker));
  }

  // The same for a restore whose writes are not tracked (lazy): the next incremental checkpoint
  // compares pages with the image's instead. Without a mapping of every image, a full one.
  void compare_with_restored_image(const restore::LoadedImage& img) {
    std::vector<capture::PageReference::Source> sources;
    auto add = [&](const restore::PageSource& pages) {
      auto m = MappedFile::map_readonly(pages.fd);
      if (m) {
        sources.push_back({std::move(*m), pages.base});
      }
    };
    add(img.pages);
    for (const auto& p : img.parents) {
      add(p.pages);
    }
    if (sources.size() == img.parents.size() + 1) {
      capture::base_for_comparison(base, img.proc, restored_chain(img), std::move(sources));
    }
  }

  // The restored image and its parents, in the order page runs number them.
  static std::vector<capture::BaseImage> restored_chain(const restore::LoadedImage& img) {
    std::vector<capture::BaseImage> images;
    auto add = [&](const image::ImageReader& r, const std::string& id) {
      std::error_code ec;
      std::string path = std::filesystem::absolute(r.path(), ec).lexically_normal().string();
      struct stat st {};
      uint64_t size = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
      images.push_back({path, id, size});
    };
    add(img.reader, img.proc.image_id);
    for (size_t i = 0; i < img.parents.size(); ++i) {
      add(img.parents[i].reader, img.proc.parents[i].image_id);
    }
    return images;
  }

  // `conn`: the request's connection, for progress lines before the reply.
  nlohmann::json handle(const nlohmann::json& req, int conn) {
    std::string cmd = req.value("cmd", "");
    if (cmd == "info") {
      return {{"ok", true}, {"name", name}, {"pid", program}};
    }
    if (cmd == "checkpoint") {
      capture::CheckpointOptions opts;
      opts.image_path = req.value("image", "");
      opts.kill = req.value("kill", false);
      auto codec = image::parse_codec(req.value("compress", std::string("none")));
      if (!codec) {
        return {{"ok", false}, {"error", codec.error().describe()}};
      }
      opts.codec = *codec;
      opts.name = name;
      opts.incremental = req.value("incremental", false);
      opts.precopy = req.value("precopy", true);
      opts.parent = req.value("parent", "");
      std::string page_cache = req.value("page_cache", std::string("auto"));
      opts.page_cache = page_cache == "yes"  ? capture::CheckpointOptions::PageCache::kUse
                        : page_cache == "no" ? capture::CheckpointOptions::PageCache::kBypass
                                             : capture::CheckpointOptions::PageCache::kAuto;
      capture::CheckpointProgress progress;
      opts.progress = &progress;
      std::optional<ProgressReporter> reporter;
      reporter.emplace(conn, req.value("progress", false), progress);
      auto stats = capture::checkpoint(program, opts, base);
      reporter.reset();
      if (!stats) {
        return {{"ok", false}, {"error", stats.error().describe()}};
      }
      if (opts.kill) {
        // The name is free again before vos checkpoint returns, so a restore may follow at once.
        killed_by_checkpoint = true;
        // Its other threads are still ours as tracer: reap them too (__WALL), or the main
        // thread's exit is never reported.
        int status = 0;
        for (;;) {
          int st = 0;
          pid_t r = ::waitpid(-1, &st, __WALL);
          if (r == program) {
            status = st;
            break;
          }
          if (r < 0 && errno != EINTR) {
            break;
          }
        }
        ended = true;
        end_status = status;
        unregister(false);
      }
      nlohmann::json phases = nlohmann::json::array();
      for (const auto& [step, ms] : stats->phases) {
        phases.push_back({{"step", step}, {"ms", ms}});
      }
      return {{"ok", true},
              {"phases", phases},
              {"image", stats->image},
              {"pause_ms", stats->pause_ms},
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
              {"compress", image::codec_name(static_cast<uint32_t>(stats->codec))},
              {"pages_logical_bytes", stats->pages_logical_bytes},
              {"pages_stored_bytes", stats->pages_stored_bytes}};
    }
    return {{"ok", false}, {"error", "unknown request '" + cmd + "'"}};
  }

  void serve_one() {
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
      reply = handle(nlohmann::json::parse(req), c.get());
    } catch (const nlohmann::json::exception& e) {
      reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
    }
    std::string out = reply.dump() + "\n";
    (void)!::write(c.get(), out.data(), out.size());
  }

  // Processes the program left behind (background children, now ours) die with their
  // namespace. The kernel would kill them when we exit, but `vos run` returns as soon as it has
  // our status, so they must be gone before we send it: they are killed and reaped here.
  void end_leftovers() {
    // Everything born in the namespace descends from us, and orphans are reparented to us: with no
    // child left, nothing is left, and kill(-1), which walks every process on the machine to find
    // the namespace's (~25 us on the path to the CLI's return), is not needed. (A process that
    // entered the namespace from outside with setns is not our child; the kernel kills it when
    // we exit, a moment later.)
    pid_t r;
    while ((r = ::waitpid(-1, nullptr, __WALL | WNOHANG)) > 0) {
    }
    if (r < 0 && errno == ECHILD) {
      return;
    }
    if (::kill(-1, SIGKILL) != 0) {
      return;  // ESRCH: nothing else lives in the namespace
    }
    while (::waitpid(-1, nullptr, __WALL) > 0 || errno == EINTR) {
    }
  }

  // A failed lazy restore's statistics stay behind: they say why vos ended the program.
  void unregister(bool keep_lazy_stats) {
    // Wait until the CLI registered the program, so its entry cannot outlive us.
    char b;
    while (::read(pipes.ack_fd, &b, 1) > 0) {
    }
    remove_entry(name, keep_lazy_stats);
  }

  [[noreturn]] void finish(int wait_status) {
    KeeperStatus st{killed_by_checkpoint ? 1 : 0, wait_status};
    if (lazy) {
      if (std::string why = lazy->finish(); !why.empty()) {
        st.kind = 2;
        std::snprintf(st.why, sizeof st.why, "%s", why.c_str());
      }
      lazy.reset();
    }
    unregister(st.kind == 2);
    end_leftovers();
    (void)!::write(pipes.status_fd, &st, sizeof st);
    ::_exit(0);
  }

  [[noreturn]] void loop() {
    sigset_t set = keeper_signals();
    UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    while (true) {
      // Reap first: the program may have ended before we started listening.
      int status = 0;
      pid_t r;
      while ((r = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (r == program) {
          finish(status);
        }
      }
      pollfd fds[2] = {{sigfd.get(), POLLIN, 0}, {control.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        continue;
      }
      if (fds[0].revents & POLLIN) {
        signalfd_siginfo si{};
        while (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
            ::kill(program, static_cast<int>(si.ssi_signo));
          }
        }
      }
      if (fds[1].revents & POLLIN) {
        serve_one();
        if (ended) {
          finish(end_status);
        }
      }
    }
  }
};

Keeper start_keeper(const std::string& name, KeeperPipes pipes) {
  ::prctl(PR_SET_NAME, "vos-keeper");
  if (pipes.own_session) {
    ::setsid();
  }
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set = keeper_signals();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  auto s = setup_keeper_mounts();
  if (!s) {
    fail_start(pipes, name, s.error());
  }
  Keeper k;
  k.name = name;
  k.pipes = pipes;
  return k;
}

// The control socket must exist before the CLI registers the program (a registered program may be
// checkpointed at once), that is before the keeper reports "OK".
void open_control(Keeper& k) {
  auto control = listen_control(k.name);
  if (!control) {
    if (k.program > 0) {
      ::kill(k.program, SIGKILL);
      ::waitpid(k.program, nullptr, 0);
    }
    fail_start(k.pipes, k.name, control.error());
  }
  k.control = std::move(*control);
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

void keeper_for_new_program(const std::string& name, const std::vector<std::string>& argv,
                            std::vector<std::string> env, KeeperPipes pipes) {
  Keeper k = start_keeper(name, pipes);
  auto child = spawn_program(argv, std::move(env), pipes.own_session);
  if (!child) {
    fail_start(pipes, name, child.error());
  }
  k.program = *child;
  // Only now: binding the socket (a file in RUN_DIR, on disk on some systems) overlaps with the
  // program's own start instead of delaying it.
  open_control(k);
  release_caller_stdio();
  write_line(pipes.ready_fd, fmt::format("OK {}", *child));
  ::close(pipes.ready_fd);
  k.loop();
}

void keeper_for_restore(const std::string& name, restore::LoadedImage& img, KeeperPipes pipes) {
  Keeper k = start_keeper(name, pipes);
  open_control(k);
  int sync[2], info[2], log[2];
  if (::pipe2(sync, O_CLOEXEC) != 0 || ::pipe2(info, O_CLOEXEC) != 0 ||
      ::pipe2(log, O_CLOEXEC) != 0) {
    fail_start(pipes, name, sys_error("pipe"));
  }
  uint64_t want = static_cast<uint64_t>(img.proc.pid);
  uapi::CloneArgs ca{};
  ca.exit_signal = SIGCHLD;
  ca.set_tid = reinterpret_cast<uint64_t>(&want);
  ca.set_tid_size = 1;
  long child = ::syscall(SYS_clone3, &ca, sizeof ca);
  if (child < 0) {
    fail_start(pipes, name, sys_error("creating process with pid {}", img.proc.pid));
  }
  if (child == 0) {
    ::close(sync[1]);
    ::close(info[0]);
    ::close(log[0]);
    ::close(k.control.release());
    reset_signals_for_program();
    restore::become_program(img, sync[0], info[1], log[1]);
  }
  ::close(sync[0]);
  ::close(info[1]);
  ::close(log[1]);
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
    fail_start(pipes, name, e);
  };
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
  (void)!::write(sync[1], "g", 1);
  ::close(sync[1]);
  restore::RegionInfo region;
  if (::read(info[0], &region, sizeof region) != sizeof region) {
    // The new process gave up before the jump; its reason is in the log pipe.
    int st = 0;
    ::waitpid(pid, &st, __WALL);
    (void)join_verifier();
    fail(user_error("restore failed before the program could be rebuilt"));
  }
  auto done = restore::finish_restore(pid, img, region, join_verifier);
  if (!done) {
    (void)join_verifier();
    fail(std::move(done).error());
  }
  if (done->tracker) {
    k.base_on_restored_image(img, std::move(*done->tracker));
  } else if (img.proc.writes_tracked) {
    k.compare_with_restored_image(img);
  }
  k.base.untracked_why = done->untracked_why;
  if (done->lazy_uffd.valid()) {
    std::string stats_path = lazy_stats_path(name);
    ::unlink(stats_path.c_str());  // left by an earlier failed lazy restore of this name
    auto server = restore::LazyServer::start(
        pid, std::move(done->lazy_uffd), img, [stats_path](const restore::LazyStats& st) {
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
        });
    if (!server) {
      fail(std::move(server).error());
    }
    k.lazy = std::move(*server);
  }
  // The program has its pages (a lazy restore's server keeps its own copy of the fds): free the
  // decompressed copies.
  img.pages.owned.reset();
  for (auto& p : img.parents) {
    p.pages.owned.reset();
  }
  ::close(log[0]);
  ::close(info[0]);
  k.program = pid;
  release_caller_stdio();
  write_line(pipes.ready_fd, fmt::format("OK {}", pid));
  ::close(pipes.ready_fd);
  k.loop();
}

}  // namespace vos::keeper
