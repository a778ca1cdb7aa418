// Host side.
#include "keeper/program_processes.h"

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include "capture/proc_files.h"

namespace vos::keeper {

namespace {

std::string ns_of(pid_t pid) {
  auto link = capture::read_link(fmt::format("/proc/{}/ns/pid", pid));
  return link ? *link : std::string();
}

// The innermost number of NSpid: the pid in the process's own namespace.
pid_t inner_pid_of(const std::string& status) {
  auto at = status.find("\nNSpid:");
  if (at == std::string::npos) {
    return 0;
  }
  std::istringstream line(status.substr(at + 7, status.find('\n', at + 1) - at - 7));
  pid_t last = 0;
  for (pid_t p = 0; line >> p;) {
    last = p;
  }
  return last;
}

}  // namespace

std::vector<ProgramProcess> program_processes(const Entry& e) {
  std::string ns = ns_of(e.pid);
  if (ns.empty()) {
    ns = ns_of(e.init_pid);
  }
  std::vector<ProgramProcess> out;
  if (ns.empty()) {
    return out;
  }
  struct Raw {
    ProgramProcess p;
    pid_t host_ppid = 0, host_pgid = 0, host_sid = 0;
  };
  std::vector<Raw> raw;
  std::map<pid_t, pid_t> inner;  // host pid -> pid in the namespace
  DIR* d = ::opendir("/proc");
  if (d == nullptr) {
    return out;
  }
  while (dirent* de = ::readdir(d)) {
    pid_t host = std::atoi(de->d_name);
    if (host <= 0 || ns_of(host) != ns) {
      continue;
    }
    auto status = capture::read_text_file(fmt::format("/proc/{}/status", host));
    auto stat = capture::read_text_file(fmt::format("/proc/{}/stat", host));
    if (!status || !stat) {
      continue;  // ended meanwhile
    }
    Raw r;
    r.p.host_pid = host;
    r.p.pid = inner_pid_of("\n" + *status);
    inner[host] = r.p.pid;
    auto close = stat->rfind(')');
    auto open = stat->find('(');
    char state = 0;
    if (close == std::string::npos || std::sscanf(stat->c_str() + close + 1, " %c %d %d %d", &state,
                                                  &r.host_ppid, &r.host_pgid, &r.host_sid) != 4) {
      continue;
    }
    auto cmdline = capture::read_text_file(fmt::format("/proc/{}/cmdline", host));
    if (cmdline && !cmdline->empty()) {
      std::string c = *cmdline;
      while (!c.empty() && c.back() == '\0') {
        c.pop_back();
      }
      std::replace(c.begin(), c.end(), '\0', ' ');
      r.p.command = c;
    } else if (open != std::string::npos) {
      r.p.command = "[" + stat->substr(open + 1, close - open - 1) + "]";
    }
    if (host != e.init_pid && host != e.keeper_pid) {
      raw.push_back(std::move(r));
    }
  }
  ::closedir(d);
  auto in_ns = [&](pid_t host) {
    auto it = inner.find(host);
    return it == inner.end() ? 0 : it->second;
  };
  for (auto& r : raw) {
    r.p.ppid = in_ns(r.host_ppid);
    r.p.pgid = in_ns(r.host_pgid);
    r.p.sid = in_ns(r.host_sid);
    out.push_back(std::move(r.p));
  }
  std::sort(out.begin(), out.end(),
            [](const ProgramProcess& a, const ProgramProcess& b) { return a.pid < b.pid; });
  return out;
}

}  // namespace vos::keeper
