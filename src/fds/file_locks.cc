// Host side. Reading file locks from the kernel's lock lines, and the early check that a restore
// can take them again.
#include "fds/file_locks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "base/unique_fd.h"

namespace vos::fds {

namespace {

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  out = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

}  // namespace

Result<LockLine> parse_lock_line(std::string_view line) {
  LockLine l;
  l.text = std::string(line);
  size_t b = l.text.find_first_not_of(" \t");
  l.text = b == std::string::npos ? std::string() : l.text.substr(b);
  std::istringstream in(l.text);
  std::string ordinal, tok;
  in >> ordinal;
  if (ordinal.empty() || ordinal.back() != ':') {
    return user_error("unreadable lock line '{}'", l.text);
  }
  std::vector<std::string> t;
  while (in >> tok) {
    t.push_back(tok);
  }
  if (!t.empty() && t[0] == "->") {
    l.waiting = true;
    t.erase(t.begin());
  }
  if (t.size() != 7) {
    return user_error("unreadable lock line '{}'", l.text);
  }
  l.lock_class = t[0];
  l.mode = t[1];
  l.type = t[2];
  l.pid = std::strtoll(t[3].c_str(), nullptr, 10);
  l.dev_ino = t[4];
  uint64_t end = 0;
  if (!parse_u64(t[5], l.start) || (t[6] != "EOF" && !parse_u64(t[6], end))) {
    return user_error("unreadable lock line '{}'", l.text);
  }
  if (t[6] != "EOF") {
    l.end = end;
  }
  return l;
}

Result<std::vector<LockLine>> fdinfo_locks(const capture::KeyValues& fdinfo) {
  constexpr std::string_view kPrefix = "lock:";
  std::vector<LockLine> out;
  for (const auto& line : fdinfo.lines) {
    if (std::string_view(line).substr(0, kPrefix.size()) != kPrefix) {
      continue;
    }
    auto l = parse_lock_line(std::string_view(line).substr(kPrefix.size()));
    if (!l) {
      return std::move(l).error();
    }
    out.push_back(std::move(*l));
  }
  return out;
}

Result<std::vector<LockLine>> read_proc_locks(const std::string& proc_locks_path) {
  auto text = capture::read_text_file(proc_locks_path);
  if (!text) {
    return std::move(text).error();
  }
  std::vector<LockLine> out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    auto l = parse_lock_line(line);
    if (!l) {
      return std::move(l).error().context(proc_locks_path);
    }
    out.push_back(std::move(*l));
  }
  return out;
}

Result<image::FileLock> image_lock(const LockLine& l, int fd) {
  image::FileLock out;
  if (l.lock_class == "LEASE" || l.lock_class == "DELEG") {
    return user_error(
        "fd {}: {} {} ({}) is not supported: the kernel breaks it when another process opens "
        "the file, which a restore cannot replay",
        fd, l.lock_class == "LEASE" ? "lease (F_SETLEASE)" : "delegation", lower(l.type), l.text);
  }
  if (l.lock_class == "POSIX") {
    out.kind = image::LockKind::kPosix;
  } else if (l.lock_class == "OFDLCK") {
    out.kind = image::LockKind::kOfd;
  } else if (l.lock_class == "FLOCK") {
    out.kind = image::LockKind::kFlock;
  } else {
    return user_error("fd {}: lock of a kind vos cannot restore ({})", fd, l.text);
  }
  if (l.mode != "ADVISORY" || (l.type != "READ" && l.type != "WRITE")) {
    return user_error("fd {}: lock vos cannot restore ({})", fd, l.text);
  }
  out.type = l.type == "WRITE" ? image::LockType::kWrite : image::LockType::kRead;
  if (out.kind != image::LockKind::kFlock) {
    out.start = l.start;
    out.len = l.end ? *l.end - l.start + 1 : 0;
  }
  return out;
}

std::string lock_dev_ino(dev_t dev, ino_t ino) {
  return fmt::format("{:02x}:{:02x}:{}", major(dev), minor(dev), static_cast<uint64_t>(ino));
}

Status check_locks_free(const image::FdState& f) {
  if (f.locks.empty()) {
    return {};
  }
  // Any readable descriptor of the file will do; if none opens, the new process's own attempt
  // is the check.
  UniqueFd fd(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) {
    return {};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return {};
  }
  std::optional<std::vector<LockLine>> all;  // /proc/locks, read once if a flock needs it
  for (const auto& l : f.locks) {
    std::string holder;
    if (l.kind == image::LockKind::kFlock) {
      // flock and record locks never conflict, so F_OFD_GETLK cannot tell; /proc/locks can.
      if (!all) {
        auto read = read_proc_locks();
        if (!read) {
          return {};
        }
        all = std::move(*read);
      }
      std::string key = lock_dev_ino(st.st_dev, st.st_ino);
      for (const auto& o : *all) {
        if (!o.waiting && o.lock_class == "FLOCK" && o.dev_ino == key &&
            (l.type == image::LockType::kWrite || o.type == "WRITE")) {
          holder = fmt::format("process {}'s flock {}", o.pid,
                               o.type == "WRITE" ? "LOCK_EX" : "LOCK_SH");
          break;
        }
      }
    } else {
      struct flock q {};
      q.l_type = l.type == image::LockType::kWrite ? F_WRLCK : F_RDLCK;
      q.l_whence = SEEK_SET;
      q.l_start = static_cast<off_t>(l.start);
      q.l_len = static_cast<off_t>(l.len);
      if (::fcntl(fd.get(), F_OFD_GETLK, &q) != 0 || q.l_type == F_UNLCK) {
        continue;
      }
      image::FileLock theirs{q.l_pid == -1 ? image::LockKind::kOfd : image::LockKind::kPosix,
                             q.l_type == F_WRLCK ? image::LockType::kWrite : image::LockType::kRead,
                             static_cast<uint64_t>(q.l_start), static_cast<uint64_t>(q.l_len)};
      holder = q.l_pid > 0
                   ? fmt::format("process {}'s {}", q.l_pid, describe_lock(theirs))
                   : fmt::format("an {} of another open file description", describe_lock(theirs));
    }
    if (!holder.empty()) {
      return user_error(
          "fd {}: file {}: the program's {} conflicts with {}, taken since the checkpoint; "
          "restoring would let the program believe it holds a lock it does not",
          f.fd, f.path, describe_lock(l), holder);
    }
  }
  return {};
}

}  // namespace vos::fds
