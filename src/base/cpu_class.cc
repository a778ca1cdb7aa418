// Host side.
#include "base/cpu_class.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace vos::cpu_class {

namespace {

std::mutex mu;
std::set<pid_t> critical;  // tids
bool starved = false;      // a StarvationGuard brought everything back: stay in the foreground

pid_t self_tid() {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

bool set_class(pid_t tid, Kind k, bool background) {
  sched_param none{};
  if (!background) {
    // SCHED_OTHER keeps the thread's nice value (19 after kBatch, kNice): reset it after.
    return ::sched_setscheduler(tid, SCHED_OTHER, &none) == 0 &&
           ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 0) == 0;
  }
  switch (k) {
    case Kind::kIdle:
      return ::sched_setscheduler(tid, SCHED_IDLE, &none) == 0;
    case Kind::kBatch:
      return ::sched_setscheduler(tid, SCHED_BATCH, &none) == 0 &&
             ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 19) == 0;
    case Kind::kNice:
      return ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 19) == 0;
    case Kind::kOff:
      return true;
  }
  return false;
}

// Whether a thread put in the background can come back: tried once on a thread of its own.
bool can_come_back(Kind k) {
  bool ok = false;
  std::thread probe([&] {
    pid_t me = self_tid();
    ok = set_class(me, k, true) && set_class(me, k, false);
  });
  probe.join();
  return ok;
}

template <typename F>
void for_each_thread(F f) {
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) {
    return;
  }
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') {
      f(static_cast<pid_t>(std::atoi(e->d_name)));
    }
  }
  ::closedir(d);
}

void move_all(bool background) {
  Kind k = background_kind();
  if (k == Kind::kOff) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu);
  if (background && starved) {
    return;
  }
  for_each_thread([&](pid_t tid) {
    if (critical.count(tid) == 0) {
      set_class(tid, k, background);
    }
  });
}

}  // namespace

Kind background_kind() {
  static const Kind kind = [] {
    const char* env = std::getenv("VOS_BACKGROUND_CPU");
    Kind k = Kind::kIdle;
    if (env != nullptr && std::strcmp(env, "batch") == 0) {
      k = Kind::kBatch;
    } else if (env != nullptr && std::strcmp(env, "nice") == 0) {
      k = Kind::kNice;
    } else if (env != nullptr && std::strcmp(env, "off") == 0) {
      k = Kind::kOff;
    }
    return k == Kind::kOff || can_come_back(k) ? k : Kind::kOff;
  }();
  return kind;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kIdle:
      return "idle";
    case Kind::kBatch:
      return "batch";
    case Kind::kNice:
      return "nice";
    case Kind::kOff:
      return "off";
  }
  return "?";
}

CriticalThread::CriticalThread() : tid_(self_tid()) {
  std::lock_guard<std::mutex> lock(mu);
  critical.insert(tid_);
  set_class(tid_, Kind::kOff, false);
}

CriticalThread::~CriticalThread() {
  std::lock_guard<std::mutex> lock(mu);
  critical.erase(tid_);
}

void all_threads_to_background() {
  move_all(true);
}
void all_threads_to_foreground() {
  move_all(false);
}

namespace {

bool critical_tid_set_has(pid_t tid) {
  std::lock_guard<std::mutex> lock(mu);
  return critical.count(tid) != 0;
}

// run_delay of /proc/self/task/TID/schedstat: ns spent runnable but waiting for a CPU.
std::map<pid_t, uint64_t> run_delays(pid_t except) {
  std::map<pid_t, uint64_t> out;
  for_each_thread([&](pid_t tid) {
    if (tid == except) {
      return;
    }
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    if (FILE* f = std::fopen(path, "re")) {
      unsigned long long run = 0, wait = 0;
      if (std::fscanf(f, "%llu %llu", &run, &wait) == 2) {
        out[tid] = wait;
      }
      std::fclose(f);
    }
  });
  return out;
}

}  // namespace

struct StarvationGuard::State {
  std::mutex mu;
  std::condition_variable wake;
  bool stop = false;
  long starved_after_ms = -1;
  Kind kind = Kind::kOff;
  std::thread thread;
};

StarvationGuard::StarvationGuard() : state_(new State) {
  state_->kind = background_kind();
  if (state_->kind == Kind::kOff) {
    return;
  }
  state_->thread = std::thread([s = state_] {
    CriticalThread critical;
    constexpr auto kWindow = std::chrono::milliseconds(100);
    auto begin = std::chrono::steady_clock::now();
    pid_t me = self_tid();
    auto last = run_delays(me);
    std::unique_lock<std::mutex> lock(s->mu);
    while (!s->wake.wait_for(lock, kWindow, [&] { return s->stop; })) {
      auto now = run_delays(me);
      bool any_starved = false;
      for (const auto& [tid, wait] : now) {
        auto before = last.find(tid);
        uint64_t waited = wait - (before == last.end() ? 0 : before->second);
        if (critical_tid_set_has(tid)) {
          continue;
        }
        any_starved |=
            waited > 9 * static_cast<uint64_t>(std::chrono::nanoseconds(kWindow).count()) / 10;
      }
      last = std::move(now);
      if (any_starved) {
        s->starved_after_ms =
            static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - begin)
                                  .count());
        {
          std::lock_guard<std::mutex> g(vos::cpu_class::mu);
          starved = true;
        }
        all_threads_to_foreground();
        return;
      }
    }
  });
}

StarvationGuard::~StarvationGuard() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->wake.notify_all();
  if (state_->thread.joinable()) {
    state_->thread.join();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    starved = false;
  }
  delete state_;
}

std::string StarvationGuard::summary() const {
  if (state_->kind == Kind::kOff) {
    return "off";
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->starved_after_ms < 0) {
    return kind_name(state_->kind);
  }
  return fmt::format("{}, normal after {} ms (no CPU left free)", kind_name(state_->kind),
                     state_->starved_after_ms);
}

std::string describe_thread(pid_t tid) {
  int policy = ::sched_getscheduler(tid);
  int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  const char* name = policy == SCHED_IDLE    ? "idle"
                     : policy == SCHED_BATCH ? "batch"
                     : policy == SCHED_OTHER ? "other"
                                             : "realtime";
  return fmt::format("{} nice {}", name, nice);
}

}  // namespace vos::cpu_class
