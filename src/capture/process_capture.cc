// Host side (keeper). Process-wide state: signal handlers, interval timers, the kernel's mm
// fields (brk, stack, arguments, auxv), working directory, limits and clocks.
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include <cstring>
#include <sstream>

#include "base/clocks.h"
#include "capture/capture_context.h"
#include "capture/proc_files.h"

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

Status capture_process_state(CaptureContext& ctx) {
  auto& img = ctx.img;
  pid_t pid = ctx.pid;
  auto& session = *ctx.session;
  img.stopped = session.group_stopped();
  const auto& main_regs = session.threads().front().regs;
  uint64_t scratch = (main_regs.rsp - 128 - 512) & ~15ull;

  // Each injected call costs the frozen program tens of microseconds, so only the signals whose
  // disposition is not plain SIG_DFL are asked; SIGCHLD always, as its flags (SA_NOCLDWAIT,
  // SA_NOCLDSTOP) change behaviour even with SIG_DFL.
  auto status_text = read_text_file(fmt::format("/proc/{}/status", pid));
  if (!status_text) {
    return std::move(status_text).error();
  }
  auto status_kv = parse_key_values(*status_text);
  uint64_t non_default = std::strtoull(status_kv.get("SigCgt").c_str(), nullptr, 16) |
                         std::strtoull(status_kv.get("SigIgn").c_str(), nullptr, 16) |
                         (1ull << (SIGCHLD - 1));
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || (non_default & (1ull << (sig - 1))) == 0) {
      continue;
    }
    auto r = session.remote_syscall(pid, SYS_rt_sigaction, sig, 0, static_cast<long>(scratch), 8);
    if (!r) {
      return std::move(r).error();
    }
    if (*r < 0) {
      continue;  // signals 32/33 belong to the C library and may be refused
    }
    KernelSigaction ka{};
    VOS_TRY(read_memory(ctx, scratch, &ka, sizeof ka), "handler of signal {}", sig);
    if (ka.handler == 0 && ka.flags == 0 && ka.mask == 0) {
      continue;  // SIG_DFL with nothing else set: the new process has that already
    }
    img.actions.push_back({sig, ka.handler, ka.flags, ka.restorer, ka.mask});
  }
  for (int which = 0; which < 3; ++which) {
    auto r = session.remote_syscall(pid, SYS_getitimer, which, static_cast<long>(scratch));
    if (!r || *r < 0) {
      return user_error("getitimer({}) in process {} failed", which, pid);
    }
    itimerval it{};
    VOS_TRY(read_memory(ctx, scratch, &it, sizeof it), "interval timer {}", which);
    // An expired ITIMER_REAL whose SIGALRM is still pending reads as value 0 until the signal is
    // taken; its interval must survive all the same.
    if (it.it_value.tv_sec != 0 || it.it_value.tv_usec != 0 || it.it_interval.tv_sec != 0 ||
        it.it_interval.tv_usec != 0) {
      img.itimers.push_back({which, it.it_interval.tv_sec * 1000000 + it.it_interval.tv_usec,
                             it.it_value.tv_sec * 1000000 + it.it_value.tv_usec});
    }
  }
  auto brk = session.remote_syscall(pid, SYS_brk, 0);
  if (!brk) {
    return std::move(brk).error();
  }
  img.brk = static_cast<uint64_t>(*brk);

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
