// Host side (keeper). Open file descriptors. Each fd is classified from /proc (link target,
// fdinfo); where its content is needed (pipe data, memfd contents, socket address) vos takes a
// duplicate of it with pidfd_getfd and reads that, never disturbing the program's own fd.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>

#include "capture/capture_context.h"
#include "capture/proc_files.h"

namespace vos::capture {

namespace {

using image::FdKind;
using image::FdState;

bool starts_with(const std::string& s, const std::string& p) {
  return s.rfind(p, 0) == 0;
}

struct RawFd {
  int fd;
  std::string link;
  KeyValues info;
  struct stat st;
};

Result<std::vector<RawFd>> list_fds(pid_t pid) {
  std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return sys_error("listing fds of process {}", pid);
  }
  std::vector<RawFd> out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    RawFd r{};
    r.fd = std::atoi(e->d_name);
    auto link = read_link(fmt::format("{}/{}", dir, r.fd));
    auto info = read_text_file(fmt::format("/proc/{}/fdinfo/{}", pid, r.fd));
    if (!link || !info || ::stat(fmt::format("{}/{}", dir, r.fd).c_str(), &r.st) != 0) {
      continue;  // closed meanwhile
    }
    r.link = *link;
    r.info = parse_key_values(*info);
    out.push_back(std::move(r));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const RawFd& a, const RawFd& b) { return a.fd < b.fd; });
  return out;
}

std::string anon_name(const std::string& link) {
  std::string n = link.substr(std::strlen("anon_inode:"));
  if (!n.empty() && n.front() == '[') {
    n = n.substr(1, n.size() - 2);
  }
  return n;
}

std::string format_sockaddr(const sockaddr_storage& ss, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(in6->sin6_port));
  }
  const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
  size_t path_len = len - offsetof(sockaddr_un, sun_path);
  if (path_len > 0 && un->sun_path[0] == '\0') {
    return "@" + std::string(un->sun_path + 1, path_len - 1);
  }
  return std::string(un->sun_path, strnlen(un->sun_path, path_len));
}

// Same object as one of fds 0-2 (a terminal or pipe shared with whoever started the program)?
int stdio_index(const std::vector<RawFd>& fds, const RawFd& f) {
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

bool is_pipe_internal(const std::vector<RawFd>& fds, const RawFd& f) {
  bool reader = false, writer = false;
  for (const auto& o : fds) {
    if (o.link == f.link) {
      int acc = static_cast<int>(std::strtol(o.info.get("flags").c_str(), nullptr, 8)) & O_ACCMODE;
      reader |= acc == O_RDONLY;
      writer |= acc == O_WRONLY;
    }
  }
  return reader && writer;
}

Result<std::string> read_pipe_data(pid_t pid, int fd, uint64_t& capacity) {
  auto dup = grab_fd(pid, fd);
  if (!dup) {
    return std::move(dup).error();
  }
  int cap = ::fcntl(dup->get(), F_GETPIPE_SZ);
  capacity = cap > 0 ? static_cast<uint64_t>(cap) : 65536;
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    return sys_error("pipe2");
  }
  UniqueFd pr(p[0]), pw(p[1]);
  ::fcntl(pw.get(), F_SETPIPE_SZ, cap);
  // tee() copies what is buffered without consuming it: the program still finds its data.
  ssize_t n = ::tee(dup->get(), pw.get(), INT_MAX, SPLICE_F_NONBLOCK);
  if (n < 0 && errno != EAGAIN) {
    return sys_error("copying unread data of pipe fd {}", fd);
  }
  std::string data;
  char buf[65536];
  while (true) {
    ssize_t r = ::read(pr.get(), buf, sizeof buf);
    if (r <= 0) {
      break;
    }
    data.append(buf, static_cast<size_t>(r));
  }
  return data;
}

std::pair<int64_t, int64_t> parse_pair(const std::string& s) {
  long long a = 0, b = 0;
  std::sscanf(s.c_str(), "(%lld, %lld)", &a, &b);
  return {a, b};
}

// Classifies one fd. With `ctx` null this is the precheck: nothing is read from the object.
Status describe_fd(pid_t pid, const std::vector<RawFd>& fds, const RawFd& f, CaptureContext* ctx,
                   FdState& out) {
  out.fd = f.fd;
  long long flags = std::strtoll(f.info.get("flags").c_str(), nullptr, 8);
  out.cloexec = (flags & O_CLOEXEC) != 0;
  out.flags = static_cast<int32_t>(flags & ~O_CLOEXEC);
  out.pos = std::strtoull(f.info.get("pos").c_str(), nullptr, 10);
  out.path = f.link;
  out.ino = f.st.st_ino;
  const std::string& link = f.link;
  mode_t type = f.st.st_mode & S_IFMT;

  if (link == "/dev/null") {
    out.kind = FdKind::kDevNull;
    return {};
  }
  if (starts_with(link, "/memfd:")) {
    out.kind = FdKind::kMemfd;
    out.size = static_cast<uint64_t>(f.st.st_size);
    if (ctx != nullptr) {
      auto dup = grab_fd(pid, f.fd);
      if (!dup) {
        return std::move(dup).error();
      }
      std::string data(out.size, '\0');
      if (::pread(dup->get(), data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) {
        return sys_error("reading memfd fd {}", f.fd);
      }
      out.data = ctx->add_blob(data.data(), data.size());
    }
    return {};
  }
  if (starts_with(link, "/") && type == S_IFREG) {
    if (link.size() > 10 && link.compare(link.size() - 10, 10, " (deleted)") == 0) {
      return user_error("fd {}: file {} was deleted: not supported yet", f.fd, link);
    }
    out.kind = FdKind::kFile;
    out.size = static_cast<uint64_t>(f.st.st_size);
    out.mtime_ns = f.st.st_mtim.tv_sec * 1000000000ll + f.st.st_mtim.tv_nsec;
    return {};
  }
  if (starts_with(link, "/") && type == S_IFDIR) {
    out.kind = FdKind::kDir;
    return {};
  }
  if (starts_with(link, "pipe:")) {
    if (is_pipe_internal(fds, f)) {
      out.kind = FdKind::kPipe;
      out.pipe_write_end = (flags & O_ACCMODE) == O_WRONLY;
      if (ctx != nullptr && !out.pipe_write_end) {
        auto data = read_pipe_data(pid, f.fd, out.size);
        if (!data) {
          return std::move(data).error();
        }
        out.data = ctx->add_blob(data->data(), data->size());
      }
      return {};
    }
    out.stdio = stdio_index(fds, f);
    if (out.stdio >= 0) {
      out.kind = FdKind::kStdio;
      return {};
    }
    return user_error("fd {}: pipe shared with another process is not supported yet", f.fd);
  }
  if (type == S_IFCHR || type == S_IFSOCK) {
    bool listening = false;
    if (type == S_IFSOCK) {
      auto dup = grab_fd(pid, f.fd);
      if (!dup) {
        return std::move(dup).error();
      }
      int v = 0, domain = 0, stype = 0;
      socklen_t l = sizeof v;
      ::getsockopt(dup->get(), SOL_SOCKET, SO_ACCEPTCONN, &v, &l);
      l = sizeof domain;
      ::getsockopt(dup->get(), SOL_SOCKET, SO_DOMAIN, &domain, &l);
      l = sizeof stype;
      ::getsockopt(dup->get(), SOL_SOCKET, SO_TYPE, &stype, &l);
      listening = v != 0;
      if (listening && (domain == AF_INET || domain == AF_INET6 || domain == AF_UNIX)) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(dup->get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
          return sys_error("getsockname of fd {}", f.fd);
        }
        out.kind = domain == AF_UNIX ? FdKind::kUnixListen : FdKind::kTcpListen;
        out.sockaddr = format_sockaddr(ss, len);
        out.sock_type = stype;
        out.backlog = 128;
        return {};
      }
    }
    out.stdio = stdio_index(fds, f);
    if (out.stdio >= 0) {
      out.kind = FdKind::kStdio;
      return {};
    }
    if (type == S_IFSOCK) {
      return user_error("fd {}: connected socket is not supported yet", f.fd);
    }
    return user_error("fd {}: device {} is not supported yet", f.fd, link);
  }
  if (starts_with(link, "anon_inode:")) {
    std::string name = anon_name(link);
    if (name == "eventfd") {
      out.kind = FdKind::kEventfd;
      out.count = std::strtoull(f.info.get("eventfd-count").c_str(), nullptr, 16);
      out.semaphore = f.info.get("eventfd-semaphore") == "1";
      return {};
    }
    if (name == "eventpoll") {
      out.kind = FdKind::kEpoll;
      for (const auto& line : f.info.lines) {
        int tfd = 0;
        unsigned events = 0;
        unsigned long long data = 0;
        if (std::sscanf(line.c_str(), "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3) {
          out.epoll.push_back({tfd, events, data});
        }
      }
      return {};
    }
    if (name == "timerfd") {
      out.kind = FdKind::kTimerfd;
      out.clockid = static_cast<int32_t>(std::strtol(f.info.get("clockid").c_str(), nullptr, 10));
      out.count = std::strtoull(f.info.get("ticks").c_str(), nullptr, 10);
      auto [vs, vns] = parse_pair(f.info.get("it_value"));
      auto [is, ins] = parse_pair(f.info.get("it_interval"));
      out.value_ns = vs * 1000000000ll + vns;
      out.interval_ns = is * 1000000000ll + ins;
      return {};
    }
    if (name == "signalfd") {
      out.kind = FdKind::kSignalfd;
      out.sigmask = std::strtoull(f.info.get("sigmask").c_str(), nullptr, 16);
      return {};
    }
    return user_error("fd {}: {} is not supported yet", f.fd, name);
  }
  return user_error("fd {}: {} is not supported yet", f.fd, link);
}

// The lower fd sharing `f`'s open file description (dup, dup2, fork), or -1.
int find_dup(pid_t pid, const std::vector<RawFd>& fds, const RawFd& f) {
  constexpr int kKcmpFile = 0;
  for (const auto& o : fds) {
    if (o.fd >= f.fd) {
      break;
    }
    if (o.st.st_dev == f.st.st_dev && o.st.st_ino == f.st.st_ino &&
        ::syscall(SYS_kcmp, pid, pid, kKcmpFile, o.fd, f.fd) == 0) {
      return o.fd;
    }
  }
  return -1;
}

Status walk_fds(pid_t pid, CaptureContext* ctx) {
  auto fds = list_fds(pid);
  if (!fds) {
    return std::move(fds).error();
  }
  for (const auto& f : *fds) {
    FdState s;
    int dup = ctx != nullptr ? find_dup(pid, *fds, f) : -1;
    if (dup >= 0) {
      for (const auto& earlier : ctx->img.fds) {
        if (earlier.fd == dup) {
          s = earlier;  // same object; only the number and close-on-exec differ
          s.data = {};
        }
      }
      s.fd = f.fd;
      s.dup_of = dup;
      s.cloexec = (std::strtoll(f.info.get("flags").c_str(), nullptr, 8) & O_CLOEXEC) != 0;
      ctx->img.fds.push_back(std::move(s));
      continue;
    }
    VOS_TRY(describe_fd(pid, *fds, f, ctx, s), "process {}", pid);
    if (ctx != nullptr) {
      ctx->img.fds.push_back(std::move(s));
    }
  }
  return {};
}

}  // namespace

Status precheck_fds(pid_t pid) {
  return walk_fds(pid, nullptr);
}

Status capture_fds(CaptureContext& ctx) {
  return walk_fds(ctx.pid, &ctx);
}

}  // namespace vos::capture
