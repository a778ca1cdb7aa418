// Host side (CLI and keeper). The directory of managed programs on this machine: one JSON file
// and one control socket per program name, in a directory only the user can read.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace vos::keeper {

struct Entry {
  std::string name;
  pid_t pid = 0;         // the program, as the host sees it
  pid_t keeper_pid = 0;  // as the host sees it
  pid_t init_pid = 0;    // the pid namespace's init, as the host sees it
  pid_t inner_pid = 0;   // as the program sees itself
  std::vector<std::string> argv;
  int64_t started_ms = 0;
  std::string restored_from;
  uint32_t uid = 0;  // the user it runs as
  std::string dir;   // the run directory it was found in (not stored)
};

std::string run_dir();  // $VOS_RUN_DIR, /run/vos (root), $XDG_RUNTIME_DIR/vos or /tmp/vos-UID
// The run directories whose programs the caller sees: its own; for root (without $VOS_RUN_DIR)
// also every user's (/run/user/UID/vos, /tmp/vos-UID), so that root manages every program.
std::vector<std::string> visible_run_dirs();
Status ensure_run_dir();
std::string socket_path(const std::string& name);
std::string socket_path(const Entry& e);  // in the run directory it was found in
std::string entry_path(const std::string& name);
// Written by the keeper of a program restored with --lazy once all its memory is in (or once
// serving it failed; then it stays after the program ended, saying why).
std::string lazy_stats_path(const std::string& name);
// A detached program's output, when its stdout/stderr would have been a terminal or a pipe
// (`vos logs NAME`); kept after it ends, until a program of that name is started again.
std::string log_path(const std::string& name);
// Writes `j` to `path` through a temporary file and rename.
Status write_json_file(const std::string& path, const nlohmann::json& j);

Status write_entry(const Entry& e);
void remove_entry(const std::string& name, bool keep_lazy_stats = false);
// Live entries only: those whose keeper or namespace still lives (a program whose keeper died
// runs on, unmanaged: keeper_alive() says so); the others are removed on the way.
std::vector<Entry> list_entries();
bool keeper_alive(const Entry& e);
// By name (the caller's own program first, then other users' for root) or host pid.
std::optional<Entry> find_entry(const std::string& name_or_pid);
bool name_in_use(const std::string& name);

}  // namespace vos::keeper
