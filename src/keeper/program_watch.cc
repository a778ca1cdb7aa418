// Host side (keeper).
#include "keeper/program_watch.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "capture/proc_files.h"

namespace vos::keeper {

namespace {

// A zombie has ended; only its reaping (by init) is left.
bool running(pid_t pid) {
  auto stat = capture::read_text_file(fmt::format("/proc/{}/stat", pid));
  if (!stat) {
    return false;
  }
  auto close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) {
    return false;
  }
  char state = (*stat)[close + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace

void ProgramWatch::rescan() {
  std::set<pid_t> seen;
  if (DIR* d = ::opendir("/proc"); d != nullptr) {
    pid_t self = ::getpid();
    while (dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || pid <= 1 || pid == self ||
          helpers_.count(static_cast<pid_t>(pid)) != 0) {
        continue;
      }
      seen.insert(static_cast<pid_t>(pid));
    }
    ::closedir(d);
  }
  for (auto it = alive_.begin(); it != alive_.end();) {
    it = seen.count(it->first) == 0 ? alive_.erase(it) : std::next(it);
  }
  for (pid_t pid : seen) {
    if (alive_.count(pid) != 0) {
      continue;
    }
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    // Opened before the state is read: a process that ends after the check still wakes poll.
    if (fd.valid() && running(pid)) {
      alive_.emplace(pid, std::move(fd));
    }
  }
}

std::vector<pid_t> ProgramWatch::others() const {
  std::vector<pid_t> out;
  for (const auto& [pid, fd] : alive_) {
    if (pid != root_) {
      out.push_back(pid);
    }
  }
  return out;
}

void ProgramWatch::add_pollfds(std::vector<pollfd>& fds) const {
  for (const auto& [pid, fd] : alive_) {
    fds.push_back({fd.get(), POLLIN, 0});
  }
}

void ProgramWatch::forget_ended(const std::vector<pollfd>& fds) {
  for (const auto& p : fds) {
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
      continue;
    }
    for (auto it = alive_.begin(); it != alive_.end(); ++it) {
      if (it->second.get() == p.fd) {
        alive_.erase(it);
        break;
      }
    }
  }
}

}  // namespace vos::keeper
