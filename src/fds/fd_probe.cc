// Host side (keeper). Reading what /proc says about a program's descriptors.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "fds/fd_kind.h"
#include "fds/sockaddr.h"
#include "remote/remote_calls.h"

namespace vos::fds {

bool FdProbe::deleted() const {
  constexpr std::string_view kDeleted = " (deleted)";
  return link.size() > kDeleted.size() &&
         std::string_view(link).substr(link.size() - kDeleted.size()) == kDeleted;
}

int ProbeSet::stdio_index(const FdProbe& f) const {
  if (f.fd >= 0 && f.fd <= 2) {
    return f.fd;
  }
  for (const auto& s : fds) {
    if (s.fd > 2) {
      break;
    }
    if (s.st.st_dev == f.st.st_dev && s.st.st_ino == f.st.st_ino) {
      return s.fd;
    }
  }
  return -1;
}

namespace {

// Reads the socket's domain, type, whether it listens and its address from a copy of it.
std::optional<SocketInfo> probe_socket(pid_t pid, int fd) {
  auto dup = remote::grab_fd(pid, fd);
  if (!dup) {
    return std::nullopt;
  }
  SocketInfo s;
  int v = 0;
  socklen_t l = sizeof v;
  ::getsockopt(dup->get(), SOL_SOCKET, SO_ACCEPTCONN, &v, &l);
  s.listening = v != 0;
  l = sizeof s.domain;
  ::getsockopt(dup->get(), SOL_SOCKET, SO_DOMAIN, &s.domain, &l);
  l = sizeof s.type;
  ::getsockopt(dup->get(), SOL_SOCKET, SO_TYPE, &s.type, &l);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(dup->get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    s.address = format_sockaddr(ss, len);
  }
  struct stat st {};
  // Only a connected unix socket's peer tells its kind (unix_orphan_socket.cc): probes run again
  // at the freeze, so the question is not asked of listening ones.
  if (s.domain == AF_UNIX && !s.listening && ::fstat(dup->get(), &st) == 0) {
    if (auto d = diag_unix_socket(st.st_ino); d) {
      s.unix_diag = *d;
    }
  }
  return s;
}

}  // namespace

Result<ProbeSet> probe_fds(pid_t pid, const std::string& log, dev_t console_rdev) {
  std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return sys_error("listing fds of process {}", pid);
  }
  ProbeSet set;
  set.pid = pid;
  set.console_rdev = console_rdev;
  struct stat log_st {};
  if (!log.empty() && ::stat(log.c_str(), &log_st) == 0) {
    set.log_dev = log_st.st_dev;
    set.log_ino = log_st.st_ino;
  }
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    FdProbe r;
    r.fd = std::atoi(e->d_name);
    auto link = capture::read_link(fmt::format("{}/{}", dir, r.fd));
    auto info = capture::read_text_file(fmt::format("/proc/{}/fdinfo/{}", pid, r.fd));
    if (!link || !info || ::stat(fmt::format("{}/{}", dir, r.fd).c_str(), &r.st) != 0) {
      continue;  // closed meanwhile
    }
    r.link = *link;
    r.info = capture::parse_key_values(*info);
    long long flags = std::strtoll(r.info.get("flags").c_str(), nullptr, 8);
    r.cloexec = (flags & O_CLOEXEC) != 0;
    r.flags = static_cast<int>(flags & ~O_CLOEXEC);
    if (r.type() == S_IFSOCK) {
      r.socket = probe_socket(pid, r.fd);
    }
    set.fds.push_back(std::move(r));
  }
  ::closedir(d);
  std::sort(set.fds.begin(), set.fds.end(),
            [](const FdProbe& a, const FdProbe& b) { return a.fd < b.fd; });
  return set;
}

Result<int> FdRecreate::lift(int fd) const {
  if (fd < 0) {
    return sys_error("creating a descriptor");
  }
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, above);
  int e = errno;
  ::close(fd);
  if (moved < 0) {
    errno = e;
    return sys_error("moving a descriptor above fd {}", above);
  }
  return moved;
}

}  // namespace vos::fds
