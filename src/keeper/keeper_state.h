// Host side (keeper). The keeper of one program: what keeper_for_new_program and
// keeper_for_restore build, and the loop both end in.
#pragma once

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/unique_fd.h"
#include "capture/checkpoint.h"
#include "console/console.h"
#include "keeper/host_view.h"
#include "keeper/keeper.h"
#include "keeper/program_watch.h"
#include "restore/lazy_restore.h"

namespace vos::keeper {

struct Keeper {
  std::string name;
  pid_t program = 0;       // the first process, as the namespace numbers it
  pid_t program_host = 0;  // the same on the host: what `ps` and error messages show
  KeeperPipes pipes;
  std::optional<HostView> host;
  UniqueFd control;
  std::optional<ProgramWatch> watch;
  capture::CheckpointBase base;                         // what an incremental checkpoint builds on
  std::map<pid_t, capture::CheckpointBase> tree_bases;  // the same per process, for a tree
  // Serving a lazy restore's memory; ended (its threads joined, its statistics written) before
  // the keeper exits, or the statistics file could be left half-written.
  std::unique_ptr<restore::LazyRestore> lazy;
  pid_t lazy_watchdog = 0;  // see lazy_watchdog.h
  // The program's vos pty, served (vos attach); its slave's device number, for the checkpoint.
  std::unique_ptr<console::Console> console;
  dev_t console_rdev = 0;
  bool first_end_told = false;
  bool killed = false;  // the request being served ended the program (checkpoint --kill)
  // Threads of the killed program to reap before replying: its file locks are free only once
  // they are all gone, and a restore may follow the reply at once.
  std::vector<pid_t> reap_before_reply;

  // "process 1234" (host pid), as the user knows it from `ps` and `vos ps`.
  std::string who() const;
  // Whether the program's process group is its terminal's foreground group now.
  bool in_terminal_foreground() const;
  void note(const std::string& line) const;
  [[noreturn]] void fail_start(const Error& e) const;
  Status open_control();
  // Once the program exists: its host pid, the watch on its processes, the keeper's own process
  // group (so that the terminal's signals reach the program, not the keeper).
  void adopt_program(pid_t pid);

  // The next incremental checkpoint of restored process `f` builds on the image (and parents)
  // it was restored from: with its writes tracked since the restore, or (a lazy restore of a
  // single process, whose writes are not tracked) by comparing pages with the image's; else a
  // full one. `tree`: the base is one of tree_bases.
  void base_on_restored_process(const restore::LoadedImage& img, restore::FinishedRestore& f,
                                bool tree);

  // Serves the pty KeeperPipes names, if any: from here on its output goes into the model.
  // `screen`: a restored one.
  void start_console(const std::string& screen, bool keep_until_attach = false);
  // With the program frozen: the pty's state, for the image.
  Result<image::ConsoleState> console_state(bool keep_running);
  nlohmann::json handle(const nlohmann::json& req, int conn);
  nlohmann::json checkpoint(const nlohmann::json& req, int conn);
  void serve_one();
  // The program's processes changed: tells the CLI when the first one has ended, and finishes
  // once none is left.
  void on_processes_changed();
  [[noreturn]] void finish();
  [[noreturn]] void loop();
};

// Registers the program (pids filled in from `k`), tells the CLI that it runs, and serves it.
[[noreturn]] void report_running(Keeper& k);

// After a restore, before the program runs: the pty's mode and the input it had not read yet.
Status restore_console_input(int master, const image::ConsoleState& c);

// Removes the program's registry entry. A failed lazy restore's statistics stay: they say why
// vos ended the program.
void unregister(const Keeper& k, bool keep_lazy_stats);

// keeper_signals.cc. The keeper takes every signal through a signalfd (blocked from its start,
// so none is lost or acts on it) and passes on to the program those sent to it by a process.
void block_keeper_signals();
UniqueFd keeper_signalfd();
void forward_signals(const Keeper& k, int sigfd);

// lazy_watchdog.cc. While a lazy restore's memory is served, the program cannot run without the
// keeper: a page it has not got would read as zeros once the keeper's userfaultfd is gone. A
// small child of the keeper, told by the kernel when the keeper dies (PR_SET_PDEATHSIG), then
// kills the program: a loud end, never a silently wrong program.
Status start_lazy_watchdog(Keeper& k);
void stop_lazy_watchdog(Keeper& k);
void reap_helpers(Keeper& k);

}  // namespace vos::keeper
