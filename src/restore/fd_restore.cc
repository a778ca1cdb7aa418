// Host side (the new process, before the blob).
#include "restore/fd_restore.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "abi/kernel_uapi.h"

namespace vos::restore {

namespace {

using image::FdKind;
using image::FdState;

constexpr int kFdFlagsSettable = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

Status place(int fd, const FdState& f) {
  if (fd < 0) {
    return sys_error("fd {}: recreating {} {}", f.fd, image::fd_kind_name(f.kind), f.path);
  }
  if (fd != f.fd) {
    if (::dup3(fd, f.fd, f.cloexec ? O_CLOEXEC : 0) < 0) {
      ::close(fd);
      return sys_error("fd {}: dup3", f.fd);
    }
    ::close(fd);
  } else if (!f.cloexec) {
    ::fcntl(fd, F_SETFD, 0);
  }
  if (::fcntl(f.fd, F_SETFL, f.flags & kFdFlagsSettable) != 0) {
    return sys_error("fd {}: restoring flags", f.fd);
  }
  return {};
}

Status write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys_error("writing");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Result<sockaddr_storage> parse_sockaddr(const std::string& s, int& family, socklen_t& len) {
  sockaddr_storage ss{};
  if (!s.empty() && (s[0] == '/' || s[0] == '@')) {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    un->sun_family = AF_UNIX;
    if (s.size() >= sizeof un->sun_path) {
      return user_error("unix socket path too long: {}", s);
    }
    std::memcpy(un->sun_path, s.data(), s.size());
    if (s[0] == '@') {
      un->sun_path[0] = '\0';
    }
    family = AF_UNIX;
    len =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + s.size() + (s[0] == '/' ? 1 : 0));
    return ss;
  }
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    return user_error("bad socket address {}", s);
  }
  std::string host = s.substr(0, colon);
  int port = std::atoi(s.c_str() + colon + 1);
  if (!host.empty() && host.front() == '[') {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr);
    family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, host.c_str(), &in->sin_addr);
    family = AF_INET;
    len = sizeof(sockaddr_in);
  }
  return ss;
}

Result<int> make_listener(const FdState& f) {
  int family = 0;
  socklen_t len = 0;
  auto ss = parse_sockaddr(f.sockaddr, family, len);
  if (!ss) {
    return std::move(ss).error();
  }
  int s = ::socket(family, f.sock_type | SOCK_CLOEXEC, 0);
  if (s < 0) {
    return sys_error("socket");
  }
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_UNIX && f.sockaddr[0] == '/') {
    struct stat st {};
    if (::lstat(f.sockaddr.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ::unlink(f.sockaddr.c_str());  // the dead original's socket file
    }
  }
  if (::bind(s, reinterpret_cast<sockaddr*>(&*ss), len) != 0) {
    int e = errno;
    ::close(s);
    return Error(e, fmt::format("cannot listen again on {} (is the original program still "
                                "running?)",
                                f.sockaddr));
  }
  if (::listen(s, f.backlog) != 0) {
    ::close(s);
    return sys_error("listen on {}", f.sockaddr);
  }
  return s;
}

Result<int> make_fd(const LoadedImage& img, const FdState& f, const int stdio_copy[3]) {
  const char* blob = img.blobs.data();
  switch (f.kind) {
    case FdKind::kFile:
    case FdKind::kDevNull:
    case FdKind::kDir: {
      int fd = ::open(f.path.c_str(), (f.flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_CLOEXEC);
      if (fd >= 0 && f.kind == FdKind::kFile &&
          ::lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
        ::close(fd);
        return sys_error("seeking {} to {}", f.path, f.pos);
      }
      return fd;
    }
    case FdKind::kStdio:
      return ::fcntl(stdio_copy[f.stdio], F_DUPFD_CLOEXEC, 0);
    case FdKind::kEventfd:
      return ::eventfd(static_cast<unsigned>(f.count),
                       EFD_CLOEXEC | (f.semaphore ? EFD_SEMAPHORE : 0));
    case FdKind::kSignalfd: {
      sigset_t mask;
      std::memcpy(&mask, &f.sigmask, sizeof f.sigmask);
      return ::signalfd(-1, &mask, SFD_CLOEXEC);
    }
    case FdKind::kTimerfd: {
      int fd = ::timerfd_create(f.clockid, TFD_CLOEXEC);
      if (fd < 0) {
        return fd;
      }
      // An expired periodic timer reads as value 0 until its expirations are read; the kernel
      // then moves it on by whole intervals.
      int64_t value_ns = f.value_ns != 0 ? f.value_ns : f.interval_ns;
      if (value_ns != 0) {
        itimerspec its{};
        its.it_value = {value_ns / 1000000000, value_ns % 1000000000};
        its.it_interval = {f.interval_ns / 1000000000, f.interval_ns % 1000000000};
        if (::timerfd_settime(fd, 0, &its, nullptr) != 0) {
          ::close(fd);
          return sys_error("timerfd_settime");
        }
      }
      if (f.count != 0) {
        uint64_t ticks = f.count;
        if (::ioctl(fd, uapi::kTimerfdIocSetTicks, &ticks) != 0) {
          ::close(fd);
          return sys_error("restoring {} timerfd expirations", ticks);
        }
      }
      return fd;
    }
    case FdKind::kMemfd: {
      std::string name = f.path.substr(std::strlen("/memfd:"));
      auto del = name.rfind(" (deleted)");
      if (del != std::string::npos) {
        name.resize(del);
      }
      int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
      if (fd < 0) {
        return fd;
      }
      auto w = write_all(fd, blob + f.data.offset, f.data.size);
      if (!w || ::ftruncate(fd, static_cast<off_t>(f.size)) != 0 ||
          ::lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
        ::close(fd);
        return sys_error("filling memfd {}", name);
      }
      return fd;
    }
    case FdKind::kTcpListen:
    case FdKind::kUnixListen:
      return make_listener(f);
    case FdKind::kPipe:
    case FdKind::kEpoll:
      break;  // handled by the caller: they depend on other fds
  }
  return user_error("fd {}: cannot recreate kind {}", f.fd, image::fd_kind_name(f.kind));
}

// Both ends of each pipe, created once and filled with the unread data.
Status restore_pipes(const LoadedImage& img, int above) {
  std::map<uint64_t, std::pair<int, int>> pipes;  // ino -> (read end, write end)
  for (const auto& f : img.proc.fds) {
    if (f.kind != FdKind::kPipe || f.dup_of >= 0 || pipes.count(f.ino) != 0) {
      continue;
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return sys_error("pipe2");
    }
    // Kept above every program fd until placed, so placing one end never lands on another.
    int r = ::fcntl(p[0], F_DUPFD_CLOEXEC, above);
    int w = ::fcntl(p[1], F_DUPFD_CLOEXEC, above);
    ::close(p[0]);
    ::close(p[1]);
    if (r < 0 || w < 0) {
      return sys_error("moving pipe ends");
    }
    pipes[f.ino] = {r, w};
  }
  for (const auto& f : img.proc.fds) {
    if (f.kind == FdKind::kPipe && !f.pipe_write_end && f.dup_of < 0) {
      auto [r, w] = pipes[f.ino];
      if (f.size != 0) {
        ::fcntl(w, F_SETPIPE_SZ, static_cast<int>(f.size));
      }
      VOS_TRY(write_all(w, img.blobs.data() + f.data.offset, f.data.size), "fd {}: refilling pipe",
              f.fd);
    }
  }
  for (const auto& f : img.proc.fds) {
    if (f.kind == FdKind::kPipe && f.dup_of < 0) {
      auto [r, w] = pipes[f.ino];
      int fd = ::fcntl(f.pipe_write_end ? w : r, F_DUPFD_CLOEXEC, 0);
      VOS_TRY(place(fd, f), "restoring pipe");
    }
  }
  for (auto& [ino, ends] : pipes) {
    ::close(ends.first);
    ::close(ends.second);
  }
  return {};
}

}  // namespace

Status restore_fds(const LoadedImage& img, std::vector<int*> keep) {
  int top = 2;
  for (const auto& f : img.proc.fds) {
    top = std::max(top, f.fd);
  }
  int stdio_copy[3];
  for (int i = 0; i < 3; ++i) {
    stdio_copy[i] = ::fcntl(i, F_DUPFD_CLOEXEC, top + 1);
    keep.push_back(&stdio_copy[i]);
  }
  for (int* k : keep) {
    if (*k >= 0 && *k <= top) {
      int moved = ::fcntl(*k, F_DUPFD_CLOEXEC, top + 1);
      if (moved < 0) {
        return sys_error("moving helper fd {} out of the way", *k);
      }
      ::close(*k);
      *k = moved;
    }
  }
  // Everything else the restore inherited goes, so program fds land on free numbers.
  std::set<int> keep_set;
  for (int* k : keep) {
    keep_set.insert(*k);
  }
  DIR* d = ::opendir("/proc/self/fd");
  std::vector<int> to_close;
  if (d != nullptr) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') {
        int fd = std::atoi(e->d_name);
        if (fd != ::dirfd(d) && keep_set.count(fd) == 0) {
          to_close.push_back(fd);
        }
      }
    }
    ::closedir(d);
  }
  for (int fd : to_close) {
    ::close(fd);
  }
  VOS_TRY(restore_pipes(img, top + 1), "fds");
  for (const auto& f : img.proc.fds) {
    if (f.kind == FdKind::kPipe || f.kind == FdKind::kEpoll || f.dup_of >= 0) {
      continue;
    }
    auto fd = make_fd(img, f, stdio_copy);
    if (!fd) {
      return std::move(fd).error().context(fmt::format("fd {}", f.fd));
    }
    VOS_TRY(place(*fd, f), "fds");
  }
  for (const auto& f : img.proc.fds) {
    if (f.kind != FdKind::kEpoll || f.dup_of >= 0) {
      continue;
    }
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (const auto& t : f.epoll) {
      epoll_event ev{};
      ev.events = t.events;
      ev.data.u64 = t.data;
      if (::epoll_ctl(ep, EPOLL_CTL_ADD, t.fd, &ev) != 0) {
        return sys_error("fd {}: re-adding fd {} to the epoll set", f.fd, t.fd);
      }
    }
    VOS_TRY(place(ep, f), "fds");
  }
  // Descriptors sharing an open file description (offset, flags) with a lower one: dup it.
  for (const auto& f : img.proc.fds) {
    if (f.dup_of >= 0 && ::dup3(f.dup_of, f.fd, f.cloexec ? O_CLOEXEC : 0) < 0) {
      return sys_error("fd {}: duplicating fd {}", f.fd, f.dup_of);
    }
  }
  for (int i = 0; i < 3; ++i) {
    ::close(stdio_copy[i]);
  }
  return {};
}

}  // namespace vos::restore
