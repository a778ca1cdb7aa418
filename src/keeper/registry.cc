// Host side.
#include "keeper/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>

#include "base/unique_fd.h"
#include "capture/proc_files.h"

namespace vos::keeper {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Entry, name, pid, keeper_pid, init_pid, inner_pid,
                                                argv, started_ms, restored_from, uid)

std::string run_dir() {
  if (const char* d = std::getenv("VOS_RUN_DIR"); d != nullptr && *d != '\0') {
    return d;
  }
  if (::geteuid() == 0) {
    return "/run/vos";
  }
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    return std::string(x) + "/vos";
  }
  return fmt::format("/tmp/vos-{}", ::geteuid());
}

std::vector<std::string> visible_run_dirs() {
  std::vector<std::string> dirs = {run_dir()};
  const char* fixed = std::getenv("VOS_RUN_DIR");
  if (::geteuid() != 0 || (fixed != nullptr && *fixed != '\0')) {
    return dirs;
  }
  auto add_owned = [&](const std::string& dir, uid_t owner) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == owner &&
        std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) {
      dirs.push_back(dir);
    }
  };
  auto numeric = [](const char* s) {
    return *s != '\0' && std::all_of(s, s + std::strlen(s), ::isdigit);
  };
  if (DIR* d = ::opendir("/run/user"); d != nullptr) {
    while (dirent* e = ::readdir(d)) {
      if (numeric(e->d_name)) {
        add_owned(fmt::format("/run/user/{}/vos", e->d_name),
                  static_cast<uid_t>(std::atol(e->d_name)));
      }
    }
    ::closedir(d);
  }
  if (DIR* d = ::opendir("/tmp"); d != nullptr) {
    while (dirent* e = ::readdir(d)) {
      if (std::strncmp(e->d_name, "vos-", 4) == 0 && numeric(e->d_name + 4)) {
        add_owned(fmt::format("/tmp/{}", e->d_name), static_cast<uid_t>(std::atol(e->d_name + 4)));
      }
    }
    ::closedir(d);
  }
  return dirs;
}

Status ensure_run_dir() {
  std::string d = run_dir();
  if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
    return sys_error("creating {}", d);
  }
  return {};
}

std::string socket_path(const std::string& name) {
  return run_dir() + "/" + name + ".sock";
}
std::string socket_path(const Entry& e) {
  return (e.dir.empty() ? run_dir() : e.dir) + "/" + e.name + ".sock";
}
std::string entry_path(const std::string& name) {
  return run_dir() + "/" + name + ".json";
}

std::string log_path(const std::string& name) {
  return run_dir() + "/" + name + ".log";
}

std::string lazy_stats_path(const std::string& name) {
  return run_dir() + "/" + name + ".lazy.json";
}

// With write(2), not an ofstream: `vos run` registers every program while it starts, and a short
// program's end waits for that registration; `vos run -- /bin/true` took ~50 us less this way.
Status write_json_file(const std::string& path, const nlohmann::json& j) {
  std::string tmp = path + ".tmp";
  std::string text = j.dump() + "\n";
  UniqueFd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (!f.valid()) {
    return sys_error("creating {}", tmp);
  }
  if (::write(f.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return sys_error("writing {}", tmp);
  }
  if (::close(f.release()) != 0) {
    return sys_error("writing {}", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return sys_error("renaming {}", tmp);
  }
  return {};
}

Status write_entry(const Entry& e) {
  return write_json_file(entry_path(e.name), nlohmann::json(e));
}

void remove_entry(const std::string& name, bool keep_lazy_stats) {
  ::unlink(entry_path(name).c_str());
  ::unlink(socket_path(name).c_str());
  if (!keep_lazy_stats) {
    ::unlink(lazy_stats_path(name).c_str());
  }
}

namespace {

bool alive(pid_t pid) {
  if (pid <= 0) {
    return false;
  }
  if (::kill(pid, 0) != 0) {
    return errno == EPERM;
  }
  auto stat = capture::read_text_file(fmt::format("/proc/{}/stat", pid));
  if (!stat) {
    return false;
  }
  auto close = stat->rfind(')');
  return close == std::string::npos || close + 2 >= stat->size() || (*stat)[close + 2] != 'Z';
}

std::optional<Entry> read_entry(const std::string& path) {
  auto text = capture::read_text_file(path);
  if (!text) {
    return std::nullopt;
  }
  try {
    return nlohmann::json::parse(*text).get<Entry>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::vector<Entry> list_entries() {
  std::vector<Entry> out;
  std::string own = run_dir();
  for (const auto& dir : visible_run_dirs()) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      continue;
    }
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() < 6 || n.compare(n.size() - 5, 5, ".json") != 0 ||
          n.find(".lazy.json") != std::string::npos) {
        continue;
      }
      auto entry = read_entry(dir + "/" + n);
      if (!entry) {
        continue;
      }
      entry->dir = dir;
      if (!alive(entry->keeper_pid) && !alive(entry->init_pid)) {
        if (dir == own) {
          remove_entry(entry->name);
        }
        continue;
      }
      out.push_back(*entry);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end(), [&](const Entry& a, const Entry& b) {
    return std::make_tuple(a.dir != own, a.uid, a.name) <
           std::make_tuple(b.dir != own, b.uid, b.name);
  });
  return out;
}

std::optional<Entry> find_entry(const std::string& name_or_pid) {
  bool numeric =
      !name_or_pid.empty() && std::all_of(name_or_pid.begin(), name_or_pid.end(), ::isdigit);
  for (auto& e : list_entries()) {
    if (e.name == name_or_pid || (numeric && e.pid == std::atoi(name_or_pid.c_str()))) {
      return e;
    }
  }
  return std::nullopt;
}

bool name_in_use(const std::string& name) {
  auto entry = read_entry(entry_path(name));
  return entry && (alive(entry->keeper_pid) || alive(entry->init_pid));
}

bool keeper_alive(const Entry& e) {
  return alive(e.keeper_pid);
}

}  // namespace vos::keeper
