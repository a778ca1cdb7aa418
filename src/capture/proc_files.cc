// Host side.
#include "capture/proc_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <sstream>

#include "base/unique_fd.h"

namespace vos::capture {

Result<std::string> read_text_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return sys_error("opening {}", path);
  }
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys_error("reading {}", path);
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<uint64_t> resident_bytes(pid_t pid) {
  auto text = read_text_file(fmt::format("/proc/{}/statm", pid));
  if (!text) {
    return std::move(text).error();
  }
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(text->c_str(), "%llu %llu", &size, &resident) != 2) {
    return user_error("unexpected /proc/{}/statm: {}", pid, *text);
  }
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

namespace {

// The sum of the "KEY: N kB" lines `keys` (each with its leading newline) of a /proc file.
Result<uint64_t> sum_kib_fields(const std::string& path, std::initializer_list<const char*> keys) {
  auto text = read_text_file(path);
  if (!text) {
    return std::move(text).error();
  }
  uint64_t kib = 0;
  for (const char* key : keys) {
    auto at = text->find(key);
    if (at == std::string::npos) {
      return user_error("no {} in {}", key + 1, path);
    }
    kib += std::strtoull(text->c_str() + at + std::strlen(key), nullptr, 10);
  }
  return kib << 10;
}

}  // namespace

Result<uint64_t> private_resident_bytes(pid_t pid) {
  return sum_kib_fields(fmt::format("/proc/{}/status", pid), {"\nRssAnon:", "\nRssShmem:"});
}

Result<uint64_t> available_memory_bytes() {
  return sum_kib_fields("/proc/meminfo", {"\nMemAvailable:"});
}

Result<std::set<pid_t>> list_tasks(pid_t pid) {
  std::string path = fmt::format("/proc/{}/task", pid);
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) {
    return sys_error("listing threads of process {}", pid);
  }
  std::set<pid_t> out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') {
      out.insert(static_cast<pid_t>(std::atoi(e->d_name)));
    }
  }
  ::closedir(d);
  return out;
}

Result<std::string> read_link(const std::string& path) {
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlink(path.c_str(), buf, PATH_MAX);
  if (n < 0) {
    return sys_error("readlink {}", path);
  }
  return std::string(buf, static_cast<size_t>(n));
}

Result<std::vector<MapsEntry>> parse_maps(const std::string& text) {
  std::vector<MapsEntry> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    MapsEntry e;
    char perms[5] = {};
    unsigned long long start, end, off, ino;
    unsigned int maj, min;
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &off,
                    &maj, &min, &ino, &consumed) < 7) {
      return user_error("cannot parse maps line '{}'", line);
    }
    e.start = start;
    e.end = end;
    e.r = perms[0] == 'r';
    e.w = perms[1] == 'w';
    e.x = perms[2] == 'x';
    e.shared = perms[3] == 's';
    e.offset = off;
    e.dev_major = maj;
    e.dev_minor = min;
    e.ino = ino;
    if (consumed > 0 && static_cast<size_t>(consumed) <= line.size()) {
      e.name = line.substr(static_cast<size_t>(consumed));
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<MapsEntry>> read_maps(pid_t pid) {
  auto text = read_text_file(fmt::format("/proc/{}/maps", pid));
  if (!text) {
    return std::move(text).error();
  }
  return parse_maps(*text);
}

KeyValues parse_key_values(const std::string& text) {
  KeyValues kv;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    kv.lines.push_back(line);
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string value = line.substr(colon + 1);
    size_t b = value.find_first_not_of(" \t");
    value = b == std::string::npos ? std::string() : value.substr(b);
    kv.values[line.substr(0, colon)] = value;
  }
  return kv;
}

Result<std::vector<std::string>> read_stat_fields(pid_t pid) {
  auto text = read_text_file(fmt::format("/proc/{}/stat", pid));
  if (!text) {
    return std::move(text).error();
  }
  auto close = text->rfind(')');
  if (close == std::string::npos) {
    return user_error("cannot parse /proc/{}/stat", pid);
  }
  std::vector<std::string> fields = {"pid", "comm"};
  std::istringstream in(text->substr(close + 2));
  std::string f;
  while (in >> f) {
    fields.push_back(f);
  }
  return fields;
}

}  // namespace vos::capture
