// Host side (keeper).
#include "capture/tree_freeze.h"

#include <dirent.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "capture/proc_files.h"
#include "remote/remote_calls.h"

namespace vos::capture {

namespace {

constexpr int kKcmpVm = 1;
// Passes over the namespace before giving up: each pass freezes what the last one missed, and a
// vfork child is waited for at most this many times 100 us.
constexpr int kMaxPasses = 20000;

bool shares_memory_with_parent(pid_t pid, pid_t ppid) {
  return ppid > 1 && ::syscall(SYS_kcmp, pid, ppid, kKcmpVm, 0, 0) == 0;
}

}  // namespace

Result<TreeProcessStat> read_tree_stat(pid_t pid) {
  auto f = read_stat_fields(pid);
  if (!f) {
    return std::move(f).error();
  }
  auto num = [&](size_t i) -> long {
    return i - 1 < f->size() ? std::strtol((*f)[i - 1].c_str(), nullptr, 10) : 0;
  };
  TreeProcessStat s;
  s.state = f->size() >= 3 && !(*f)[2].empty() ? (*f)[2][0] : '?';
  s.ppid = static_cast<pid_t>(num(4));
  s.pgid = static_cast<pid_t>(num(5));
  s.sid = static_cast<pid_t>(num(6));
  s.exit_code = static_cast<int>(num(52));
  s.start_time = static_cast<uint64_t>(num(22));
  auto comm = read_text_file(fmt::format("/proc/{}/comm", pid));
  if (comm) {
    s.comm = *comm;
    while (!s.comm.empty() && s.comm.back() == '\n') {
      s.comm.pop_back();
    }
  }
  return s;
}

Result<std::set<pid_t>> namespace_processes(const std::set<pid_t>& not_program) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) {
    return sys_error("listing /proc");
  }
  std::set<pid_t> out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid > 0 && *end == '\0' && not_program.count(static_cast<pid_t>(pid)) == 0) {
      out.insert(static_cast<pid_t>(pid));
    }
  }
  ::closedir(d);
  return out;
}

namespace {

// Threads seized and interrupted ahead of their process's PtraceSession, so that the stops of
// all the processes found in one pass overlap (each waits for its turn on a CPU: ten busy
// processes on two cores, one after the other, took tens of ms). Those not handed to a session
// are let go again.
struct Interrupted {
  std::map<pid_t, std::set<pid_t>> tids;
  ~Interrupted() {
    for (const auto& [pid, set] : tids) {
      for (pid_t tid : set) {
        if (remote::wait_stop(tid)) {
          ::ptrace(PTRACE_DETACH, tid, 0, 0);
        }
      }
    }
  }
  void interrupt(pid_t pid) {
    auto tasks = list_tasks(pid);
    if (!tasks) {
      return;
    }
    for (pid_t tid : *tasks) {
      if (::ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACESYSGOOD) == 0) {
        tids[pid].insert(tid);
        ::ptrace(PTRACE_INTERRUPT, tid, 0, 0);
      }
    }
  }
  std::set<pid_t> take(pid_t pid) {
    auto it = tids.find(pid);
    if (it == tids.end()) {
      return {};
    }
    auto out = std::move(it->second);
    tids.erase(it);
    return out;
  }
};

}  // namespace

Result<FrozenTree> freeze_tree(const std::set<pid_t>& not_program) {
  FrozenTree tree;
  Interrupted interrupted;
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    auto pids = namespace_processes(not_program);
    if (!pids) {
      return std::move(pids).error();
    }
    for (pid_t pid : *pids) {
      if (tree.live.count(pid) == 0 && tree.zombies.count(pid) == 0) {
        auto st = read_tree_stat(pid);
        if (st && st->state != 'Z' && st->state != 'X' &&
            !shares_memory_with_parent(pid, st->ppid)) {
          interrupted.interrupt(pid);
        }
      }
    }
    bool fresh = false, waiting = false;
    for (pid_t pid : *pids) {
      if (tree.live.count(pid) != 0 || tree.zombies.count(pid) != 0) {
        continue;
      }
      auto st = read_tree_stat(pid);
      if (!st) {
        continue;  // ended meanwhile
      }
      fresh = true;
      if (st->state == 'Z' || st->state == 'X') {
        tree.zombies.emplace(pid, *st);
        continue;
      }
      if (shares_memory_with_parent(pid, st->ppid)) {
        waiting = true;  // a vfork child before its exec: next pass
        continue;
      }
      auto session = PtraceSession::freeze(pid, interrupted.take(pid));
      if (!session) {
        if (::access(fmt::format("/proc/{}", pid).c_str(), F_OK) != 0) {
          continue;  // it ended
        }
        if (auto again = read_tree_stat(pid); again && again->state == 'Z') {
          tree.zombies.emplace(pid, *again);
          continue;
        }
        return std::move(session).error().context(fmt::format("freezing process {}", pid));
      }
      tree.live.emplace(pid, std::move(*session));
    }
    if (!fresh && !waiting) {
      // A zombie listed early may have been reaped by its (then still running) parent.
      std::erase_if(tree.zombies, [](const auto& z) {
        auto st = read_tree_stat(z.first);
        return !st || st->state != 'Z';
      });
      return tree;
    }
    if (waiting) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  return user_error("the program's processes did not all stop (a vfork child that never execs?)");
}

}  // namespace vos::capture
