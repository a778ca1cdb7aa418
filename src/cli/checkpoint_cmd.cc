// Host side (CLI): `vos checkpoint`.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/image_names.h"
#include "cli/progress_display.h"
#include "fds/fd_kind.h"
#include "image/image_writer.h"
#include "image/page_codec.h"
#include "keeper/adopt.h"
#include "keeper/control.h"
#include "keeper/program_processes.h"
#include "keeper/registry.h"

namespace vos::cli {

namespace {

// "4096", "64K", "256M", "1G", "2T" (powers of 1024; "MiB", "MB" read the same).
std::optional<uint64_t> parse_size(const std::string& s) {
  size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(s, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!s.empty() && s[0] == '-') {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  static const std::pair<const char*, int> kUnits[] = {
      {"", 0}, {"K", 10}, {"M", 20}, {"G", 30}, {"T", 40}};
  for (const auto& [prefix, shift] : kUnits) {
    for (const char* tail : {"", "B", "iB"}) {
      if (unit == std::string(prefix) + tail && (shift == 0 || n <= (~0ull >> shift))) {
        return static_cast<uint64_t>(n) << shift;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

int cmd_checkpoint(const CheckpointArgs& a) {
  auto codec = image::parse_codec(a.compress);
  if (!codec) {
    std::fprintf(stderr, "vos checkpoint: --compress: %s\n", codec.error().message().c_str());
    return 2;
  }
  std::optional<uint64_t> file_data_limit = fds::FileContentPolicy::kDefaultLimit;
  if (!a.file_data_limit.empty()) {
    file_data_limit = parse_size(a.file_data_limit);
    if (!file_data_limit) {
      std::fprintf(stderr,
                   "vos checkpoint: --file-data-limit: '%s' is not a size (bytes, or a number "
                   "with K, M, G or T)\n",
                   a.file_data_limit.c_str());
      return 2;
    }
  }
  bool took_over = false;
  auto entry = keeper::served_entry(a.target, &took_over);
  if (!entry) {
    std::fprintf(stderr, "vos checkpoint: %s\n", entry.error().describe().c_str());
    return 1;
  }
  if (took_over) {
    std::fprintf(stderr, "vos checkpoint: %s: its keeper had died; a new one took over\n",
                 entry->name.c_str());
  }
  for (const auto& left : image::remove_dead_temporaries(a.dir.empty() ? "." : a.dir)) {
    std::fprintf(stderr, "vos checkpoint: removed %s, left by a checkpoint that died\n",
                 left.c_str());
  }
  std::string image = new_image_path(a.dir, entry->name);
  nlohmann::json req = {{"cmd", "checkpoint"},
                        {"image", image},
                        {"kill", a.kill},
                        {"compress", a.compress},
                        {"incremental", a.incremental || !a.parent.empty()},
                        {"precopy", !a.no_precopy},
                        {"page_cache", a.page_cache},
                        {"with_files", a.with_files},
                        {"file_data_limit", *file_data_limit}};
  if (const char* at = std::getenv("VOS_TEST_PAUSE_AT"); at != nullptr) {
    req["pause_at"] = at;  // tests only: see CheckpointOptions::pause_at
  }
  if (!a.parent.empty()) {
    req["parent"] = std::filesystem::absolute(a.parent).lexically_normal().string();
  }
  // The keeper compares it with the program's: a program that shares it (started by an older
  // vos, without an IPC namespace of its own) has no System V shared memory of its own.
  struct stat ipc {};
  if (::stat("/proc/self/ns/ipc", &ipc) == 0) {
    req["ipc_ns"] = static_cast<uint64_t>(ipc.st_ino);
  }
  auto mode = ProgressDisplay::parse_mode(a.progress).value_or(ProgressDisplay::Mode::kAuto);
  ProgressDisplay progress(mode, "vos checkpoint: " + entry->name);
  req["progress"] = progress.may_show();
  auto reply =
      keeper::send_request(keeper::socket_path(*entry), req, [&progress](const nlohmann::json& p) {
        progress.update(p.value("page_bytes", uint64_t{0}), p.value("expected_bytes", uint64_t{0}));
      });
  bool ok = reply && reply->value("ok", false);
  progress.finish(ok, ok ? reply->value("pages_logical_bytes", uint64_t{0}) : 0);
  if (!reply) {
    std::fprintf(stderr, "vos checkpoint: %s: %s\n", entry->name.c_str(),
                 reply.error().describe().c_str());
    return 1;
  }
  if (!reply->value("ok", false)) {
    std::string error = reply->value("error", std::string("unknown error"));
    if (::geteuid() == 0 && entry->uid != 0 &&
        error.find("Permission denied") != std::string::npos) {
      error += fmt::format(
          " (the image is written by the program's own user, uid {}: give it a "
          "--dir that user can write)",
          entry->uid);
    }
    std::fprintf(stderr, "vos checkpoint: %s: %s\n", entry->name.c_str(), error.c_str());
    return 1;
  }
  if (a.json) {
    reply->erase("ok");
    (*reply)["name"] = entry->name;
    std::printf("%s\n", reply->dump().c_str());
  } else {
    std::string note = reply->value("note", std::string());
    if (!note.empty()) {
      std::fprintf(stderr, "vos checkpoint: note: %s\n", note.c_str());
    }
    std::printf("%s\n", reply->value("image", image).c_str());
  }
  return 0;
}

int cmd_ps(bool json) {
  auto entries = keeper::list_entries();
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : entries) {
      nlohmann::json procs = nlohmann::json::array();
      for (const auto& p : keeper::program_processes(e)) {
        procs.push_back({{"pid", p.pid},
                         {"host_pid", p.host_pid},
                         {"ppid", p.ppid},
                         {"pgid", p.pgid},
                         {"sid", p.sid},
                         {"command", p.command}});
      }
      arr.push_back({{"name", e.name},
                     {"pid", e.pid},
                     {"keeper_pid", e.keeper_pid},
                     {"keeper_alive", keeper::keeper_alive(e)},
                     {"uid", e.uid},
                     {"init_pid", e.init_pid},
                     {"inner_pid", e.inner_pid},
                     {"argv", e.argv},
                     {"started_ms", e.started_ms},
                     {"restored_from", e.restored_from},
                     {"processes", procs}});
    }
    std::printf("%s\n", arr.dump().c_str());
    return 0;
  }
  bool all_users = ::geteuid() == 0;
  if (all_users) {
    std::printf("%-20s %-8s %8s  %s\n", "NAME", "USER", "PID", "COMMAND");
  } else {
    std::printf("%-20s %8s  %s\n", "NAME", "PID", "COMMAND");
  }
  for (const auto& e : entries) {
    std::string cmd;
    for (const auto& s : e.argv) {
      cmd += (cmd.empty() ? "" : " ") + s;
    }
    if (!e.restored_from.empty()) {
      cmd += "  (restored from " + e.restored_from + ")";
    }
    if (!keeper::keeper_alive(e)) {
      cmd += "  [keeper died: runs unmanaged until vos checkpoint starts a new one]";
    }
    if (all_users) {
      std::printf("%-20s %-8u %8d  %s\n", e.name.c_str(), e.uid, e.pid, cmd.c_str());
    } else {
      std::printf("%-20s %8d  %s\n", e.name.c_str(), e.pid, cmd.c_str());
    }
    // The program's other processes (children, daemons it left), each under its host pid.
    for (const auto& p : keeper::program_processes(e)) {
      if (p.host_pid == e.pid) {
        continue;
      }
      std::printf("%-*s %8d    %s  (pid %d inside, parent %d)\n", all_users ? 29 : 20, "",
                  p.host_pid, p.command.c_str(), p.pid, p.ppid);
    }
  }
  return 0;
}

}  // namespace vos::cli
