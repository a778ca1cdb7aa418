// Host side (keeper). Process-wide state: signal handlers, interval timers, the kernel's mm
// fields (brk, stack, arguments, auxv), working directory, limits and clocks.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include <cstring>
#include <functional>
#include <sstream>

#include "base/clocks.h"
#include "capture/capture_context.h"
#include "capture/proc_files.h"
#include "remote/remote_calls.h"

namespace vos::capture {

namespace {

struct KernelSigaction {
  uint64_t handler, flags, restorer, mask;
};

Status capture_clocks(CaptureContext& ctx) {
  TimeOffsets prog = time_offsets(ctx.pid);
  ctx.img.monotonic_ns = host_clock_ns(CLOCK_MONOTONIC) + prog.monotonic_ns;
  ctx.img.boottime_ns = host_clock_ns(CLOCK_BOOTTIME) + prog.boottime_ns;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  ctx.img.realtime_ns = ts.tv_sec * 1000000000ll + ts.tv_nsec;
  return {};
}

}  // namespace

// (Other processes, children among them, are the keeper's to find: it sees the whole namespace.)
void precheck_process(pid_t pid, Obstacles& obstacles) {
  precheck_posix_timers(pid, obstacles);
}

namespace {

// The injected calls capture_process_state needs, and how each answer is taken.
struct Question {
  long nr = 0;
  remote::SyscallArgs args{};
  std::function<Status(CaptureContext::Asked&, long)> take;
};

Result<std::vector<Question>> questions_for(const CaptureContext& ctx) {
  // Each injected call costs the frozen program tens of microseconds, so only the signals whose
  // disposition is not plain SIG_DFL are asked; SIGCHLD always, as its flags (SA_NOCLDWAIT,
  // SA_NOCLDSTOP) change behaviour even with SIG_DFL.
  auto status_text = read_text_file(fmt::format("/proc/{}/status", ctx.pid));
  if (!status_text) {
    return std::move(status_text).error();
  }
  auto status_kv = parse_key_values(*status_text);
  uint64_t non_default = std::strtoull(status_kv.get("SigCgt").c_str(), nullptr, 16) |
                         std::strtoull(status_kv.get("SigIgn").c_str(), nullptr, 16) |
                         (1ull << (SIGCHLD - 1));
  const auto scratch = static_cast<long>(scratch_below_stack(ctx.session->threads().front().regs));
  const CaptureContext* c = &ctx;
  std::vector<Question> q;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || (non_default & (1ull << (sig - 1))) == 0) {
      continue;
    }
    q.push_back({SYS_rt_sigaction,
                 {sig, 0, scratch, 8, 0, 0},
                 [c, sig, scratch](CaptureContext::Asked& a, long r) -> Status {
                   if (r < 0) {
                     return {};  // signals 32/33 belong to the C library and may be refused
                   }
                   KernelSigaction ka{};
                   VOS_TRY(read_memory(*c, static_cast<uint64_t>(scratch), &ka, sizeof ka),
                           "handler of signal {}", sig);
                   if (ka.handler == 0 && ka.flags == 0 && ka.mask == 0) {
                     return {};  // SIG_DFL with nothing else set: the new process has that
                   }
                   a.actions.push_back({sig, ka.handler, ka.flags, ka.restorer, ka.mask});
                   return {};
                 }});
  }
  for (int which = 0; which < 3; ++which) {
    q.push_back({SYS_getitimer,
                 {which, scratch, 0, 0, 0, 0},
                 [c, which, scratch](CaptureContext::Asked& a, long r) -> Status {
                   if (r < 0) {
                     return user_error("getitimer({}) in process {} failed", which, c->pid);
                   }
                   itimerval it{};
                   VOS_TRY(read_memory(*c, static_cast<uint64_t>(scratch), &it, sizeof it),
                           "interval timer {}", which);
                   // An expired ITIMER_REAL whose SIGALRM is still pending reads as value 0
                   // until the signal is taken; its interval must survive all the same.
                   if (it.it_value.tv_sec != 0 || it.it_value.tv_usec != 0 ||
                       it.it_interval.tv_sec != 0 || it.it_interval.tv_usec != 0) {
                     a.itimers.push_back({which,
                                          it.it_interval.tv_sec * 1000000 + it.it_interval.tv_usec,
                                          it.it_value.tv_sec * 1000000 + it.it_value.tv_usec});
                   }
                   return {};
                 }});
  }
  q.push_back({SYS_brk, {0, 0, 0, 0, 0, 0}, [](CaptureContext::Asked& a, long r) -> Status {
                 a.brk = static_cast<uint64_t>(r);
                 return {};
               }});
  return q;
}

// capture_threads' questions to thread `stop` (its alternate stack, its clear-tid address).
std::vector<Question> thread_questions(const CaptureContext& ctx, const ThreadStop& stop) {
  const auto scratch = static_cast<long>(scratch_below_stack(stop.regs));
  const CaptureContext* c = &ctx;
  pid_t tid = stop.tid;
  auto read = [c, scratch](void* out, size_t size) {
    return read_memory(*c, static_cast<uint64_t>(scratch), out, size);
  };
  return {
      {SYS_sigaltstack,
       {0, scratch, 0, 0, 0, 0},
       [read, tid](CaptureContext::Asked& a, long r) -> Status {
         if (r < 0) {
           return Error(static_cast<int>(-r), fmt::format("sigaltstack in thread {}", tid));
         }
         stack_t ss{};
         VOS_TRY(read(&ss, sizeof ss), "alternate stack of thread {}", tid);
         a.threads[tid].altstack = {reinterpret_cast<uint64_t>(ss.ss_sp), ss.ss_flags, ss.ss_size};
         return {};
       }},
      {SYS_prctl,
       {PR_GET_TID_ADDRESS, scratch, 0, 0, 0, 0},
       [read, tid](CaptureContext::Asked& a, long r) -> Status {
         if (r < 0) {
           return Error(static_cast<int>(-r), fmt::format("PR_GET_TID_ADDRESS in thread {}", tid));
         }
         VOS_TRY(read(&a.threads[tid].clear_child_tid, sizeof(uint64_t)),
                 "clear-tid address of thread {}", tid);
         return {};
       }},
  };
}

Result<CaptureContext::Asked> ask_alone(CaptureContext& ctx) {
  auto questions = questions_for(ctx);
  if (!questions) {
    return std::move(questions).error();
  }
  CaptureContext::Asked asked;
  for (const auto& q : *questions) {
    const auto& a = q.args;
    auto r = ctx.session->remote_syscall(ctx.pid, q.nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (!r) {
      return std::move(r).error();
    }
    VOS_TRY(q.take(asked, *r), "process {}", ctx.pid);
  }
  return asked;
}

}  // namespace

Status ask_thread_alone(CaptureContext& ctx, const ThreadStop& stop, CaptureContext::Asked& into) {
  for (const auto& q : thread_questions(ctx, stop)) {
    const auto& a = q.args;
    auto r = ctx.session->remote_syscall(stop.tid, q.nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (!r) {
      return std::move(r).error();
    }
    VOS_TRY(q.take(into, *r), "thread {}", stop.tid);
  }
  return {};
}

void ask_together(const std::vector<CaptureContext*>& ctxs) {
  // One queue of questions per thread: the process's own go to its main thread, before that
  // thread's.
  struct Queue {
    size_t process;
    pid_t tid;
    std::vector<Question> questions;
  };
  std::vector<Queue> queues;
  std::vector<CaptureContext::Asked> asked(ctxs.size());
  std::vector<bool> ok(ctxs.size(), false);
  size_t rounds = 0;
  for (size_t i = 0; i < ctxs.size(); ++i) {
    auto& ctx = *ctxs[i];
    auto q = questions_for(ctx);
    if (!q || ctx.session->syscall_insn() == 0 || ctx.session->threads().empty()) {
      continue;
    }
    ok[i] = true;
    bool process_asked = false;  // once, on the main thread
    for (const auto& stop : ctx.session->threads()) {
      Queue queue{i, stop.tid, {}};
      if (stop.tid == ctx.pid && !process_asked) {
        queue.questions = std::move(*q);
        process_asked = true;
      }
      auto t = thread_questions(ctx, stop);
      queue.questions.insert(queue.questions.end(), t.begin(), t.end());
      rounds = std::max(rounds, queue.questions.size());
      queues.push_back(std::move(queue));
    }
    // (Its main thread not among the stopped ones: capture_process_state asks it alone.)
    ok[i] = process_asked;
  }
  // Round k: the k-th question of every thread, all at once (each answer is read from the
  // thread's scratch memory before its next question overwrites it).
  for (size_t k = 0; k < rounds; ++k) {
    std::vector<remote::InjectedCall> calls;
    std::vector<const Queue*> of;
    for (const auto& queue : queues) {
      if (ok[queue.process] && k < queue.questions.size()) {
        calls.push_back({queue.tid, ctxs[queue.process]->session->syscall_insn(),
                         queue.questions[k].nr, queue.questions[k].args, 0});
        of.push_back(&queue);
      }
    }
    if (!remote::run_syscalls_overlapped(calls)) {
      return;  // registers are back: each process is asked alone instead
    }
    for (size_t j = 0; j < calls.size(); ++j) {
      const Queue& queue = *of[j];
      if (!queue.questions[k].take(asked[queue.process], calls[j].result)) {
        ok[queue.process] = false;
      }
    }
  }
  for (size_t i = 0; i < ctxs.size(); ++i) {
    if (ok[i]) {
      ctxs[i]->asked = std::move(asked[i]);
    }
  }
}

Status capture_process_state(CaptureContext& ctx) {
  auto& img = ctx.img;
  pid_t pid = ctx.pid;
  auto& session = *ctx.session;
  img.stopped = session.group_stopped();
  if (!ctx.asked) {
    auto asked = ask_alone(ctx);
    if (!asked) {
      return std::move(asked).error();
    }
    ctx.asked = std::move(*asked);
  }
  img.actions = ctx.asked->actions;
  img.itimers = ctx.asked->itimers;
  img.brk = ctx.asked->brk;
  auto status_text = read_text_file(fmt::format("/proc/{}/status", pid));
  if (!status_text) {
    return std::move(status_text).error();
  }
  auto status_kv = parse_key_values(*status_text);

  auto stat = read_stat_fields(pid);
  if (!stat) {
    return std::move(stat).error();
  }
  auto field = [&](size_t i) -> uint64_t {
    return i - 1 < stat->size() ? std::strtoull((*stat)[i - 1].c_str(), nullptr, 10) : 0;
  };
  img.pgid = static_cast<int32_t>(field(5));
  img.sid = static_cast<int32_t>(field(6));
  img.start_code = field(26);
  img.end_code = field(27);
  img.start_stack = field(28);
  img.start_data = field(45);
  img.end_data = field(46);
  img.start_brk = field(47);
  img.arg_start = field(48);
  img.arg_end = field(49);
  img.env_start = field(50);
  img.env_end = field(51);

  auto auxv = read_text_file(fmt::format("/proc/{}/auxv", pid));
  if (!auxv) {
    return std::move(auxv).error();
  }
  img.auxv = ctx.add_blob(auxv->data(), auxv->size());

  auto cwd = read_link(fmt::format("/proc/{}/cwd", pid));
  if (!cwd) {
    return std::move(cwd).error();
  }
  img.cwd = *cwd;
  auto exe = read_link(fmt::format("/proc/{}/exe", pid));
  if (exe) {
    img.exe = *exe;
  }
  auto cmdline = read_text_file(fmt::format("/proc/{}/cmdline", pid));
  if (cmdline) {
    std::string arg;
    for (char c : *cmdline) {
      if (c == '\0') {
        img.argv.push_back(arg);
        arg.clear();
      } else {
        arg.push_back(c);
      }
    }
  }
  img.umask = static_cast<uint32_t>(std::strtoul(status_kv.get("Umask").c_str(), nullptr, 8));
  // "Uid: real effective saved fs" (mapped to the keeper's user namespace, which maps the
  // user's own ids to themselves)
  img.uid = static_cast<uint32_t>(std::strtoul(status_kv.get("Uid").c_str(), nullptr, 10));
  img.gid = static_cast<uint32_t>(std::strtoul(status_kv.get("Gid").c_str(), nullptr, 10));
  std::istringstream groups(status_kv.get("Groups"));
  for (uint32_t g; groups >> g;) {
    img.groups.push_back(g);
  }
  img.thp_disabled = status_kv.get("THP_enabled") == "0";
  auto pers = read_text_file(fmt::format("/proc/{}/personality", pid));
  if (pers) {
    img.personality = static_cast<uint32_t>(std::strtoul(pers->c_str(), nullptr, 16));
  }
  for (int res = 0; res < RLIM_NLIMITS; ++res) {
    rlimit64 lim{};
    if (::prlimit64(pid, static_cast<__rlimit_resource>(res), nullptr, &lim) != 0) {
      return sys_error("reading resource limit {} of process {}", res, pid);
    }
    img.rlimits.emplace_back(lim.rlim_cur, lim.rlim_max);
  }
  return capture_clocks(ctx);
}

}  // namespace vos::capture
