// Host side (keeper). Checkpoint of one process: precheck, freeze, capture, write, then resume or
// kill it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "abi/image_abi.h"
#include "base/result.h"
#include "capture/incremental.h"
#include "fds/fd_kind.h"

namespace vos::capture {

// Shared with another thread while a checkpoint runs: what `vos checkpoint` shows as progress,
// and its way to call the checkpoint off.
struct CheckpointProgress {
  std::atomic<uint64_t> page_bytes{0};  // page data written to the image so far (as in memory)
  // About how much page data a full image of the program holds (its private resident memory),
  // set once the checkpoint knows it writes one; 0 for an incremental image (unknown).
  std::atomic<uint64_t> expected_bytes{0};
  // Set by the reader when whoever asked for the checkpoint is gone (Ctrl-C): the checkpoint
  // then fails as soon as it writes again, leaving no image and the program as it was.
  std::atomic<bool> cancelled{false};
};

struct CheckpointOptions {
  std::string image_path;
  std::string name;  // recorded so the restored program keeps its vos name
  std::string who;   // the program in messages, as its user knows it ("process 1234": host pid)
  // A process of a tree as `ps` on the host shows it (0: unknown): its number inside the
  // program's namespace is another process's elsewhere.
  std::function<pid_t(pid_t)> host_pid_of;
  std::string log;  // the program's vos log, captured as the terminal it stands for
  // The program's vos pty: its slave's device number, and its state (read once frozen).
  dev_t console_rdev = 0;
  std::function<Result<image::ConsoleState>()> console_state;
  bool tty_foreground = false;  // recorded: its process group was its terminal's foreground one
  bool kill = false;            // end the program once the image is on disk, never resuming it
  // With kill: runs once the image is committed, just before the program is killed.
  std::function<void(const std::string& image)> before_kill;
  pid_t ns_last_pid = 0;  // recorded: the last pid the program's namespace handed out
  pid_t writer_pid = 0;   // the writing process's host pid: names the temporary image file
  // Test hook (`vos checkpoint` passes $VOS_TEST_PAUSE_AT): stop 3 s at this point ("precopy",
  // "frozen", "writing") so that a test can kill a vos process exactly there.
  std::string pause_at;
  // Obstacles the caller found (other processes in the namespace), named with the precheck's.
  std::vector<std::string> obstacles;
  // The program has an IPC namespace of its own, as every program vos starts or restores does;
  // one started by an older vos shares the host's, whose System V shared memory is not its own.
  bool own_ipc_namespace = true;
  // Store only pages written since the last checkpoint (`base`); the first one is full and
  // starts tracking writes.
  bool incremental = false;
  std::string parent;  // if set, the image the caller expects this one to build on
  // Copy memory while the program runs and freeze it only to copy what it wrote meanwhile
  // (falls back to a copy-on-write snapshot where writes cannot be tracked).
  bool precopy = true;
  abi::PageCodec codec = abi::PageCodec::kNone;  // how page data is stored
  CheckpointProgress* progress = nullptr;        // updated as the checkpoint goes, if set
  // Page data around the page cache (O_DIRECT): kAuto does so for a full image larger than half
  // the memory available, where filling the cache with it would push out what others use.
  enum class PageCache { kAuto, kUse, kBypass } page_cache = PageCache::kAuto;
  // What is kept of regular files' contents (deleted files always; --with-files, the limit).
  fds::FileContentPolicy files;
};

struct CheckpointStats {
  std::string image;
  double pause_ms = 0;  // how long the program was stopped, in all
  // Each stop on its own, in order: arming write tracking (a live checkpoint that starts it), then
  // the freeze. The longest is what the program felt as one stall.
  std::vector<double> stops_ms;
  bool page_cache_bypassed = false;  // page data went straight to the disk (O_DIRECT)
  void add_stop(double ms) {
    pause_ms += ms;
    stops_ms.push_back(ms);
  }
  double total_ms = 0;
  uint64_t bytes = 0;  // image size
  abi::PageCodec codec = abi::PageCodec::kNone;
  uint64_t pages_logical_bytes = 0;  // page data as in memory
  uint64_t pages_stored_bytes = 0;   // the same in the image (compressed, if it was)
  uint64_t pages = 0;                // pages the image holds for the program's memory
  uint64_t pages_copied = 0;         // pages written to it, counting copies a pre-copy superseded
  uint64_t threads = 0;
  uint64_t processes = 1;  // in the image (a process tree: all of them, zombies too)
  // The program held file locks: after --kill they are free only once all of its threads are
  // gone (the last one's exit closes its descriptors), which `tids` lets the caller wait for.
  bool file_locks = false;
  std::vector<pid_t> tids;
  uint64_t pages_inherited = 0;  // found in parent images (incremental)
  std::string parent;            // the image this one builds on, if incremental
  std::string note;              // why an incremental checkpoint had to be a full one
  // The class vos's threads had while the program ran (cpu_class::StarvationGuard::summary).
  std::string background_cpu;
  // Where the time went, step by step (ms), in order: shown by `vos checkpoint --json`.
  std::vector<std::pair<std::string, double>> phases;
};

// Refuses, naming every object, if anything in the process is beyond what vos can restore.
// `who`: the process as the user knows it, for the message.
Status precheck(pid_t pid, const std::string& who, const std::string& log = "",
                const std::vector<std::string>& known = {}, bool own_ipc_namespace = true,
                const fds::FileContentPolicy& files = {});
struct CaptureContext;
// Creates the write tracker of process ctx.pid in a short stop of its own (the userfaultfd must
// be made by the program itself); the stop is recorded in `stats`.
Result<WriteTracker> start_tracking(CaptureContext& ctx, CheckpointStats& stats);

// `base` carries write tracking from one checkpoint of this program to the next (the keeper
// keeps it); it is updated after every checkpoint once tracking was asked for.
Result<CheckpointStats> checkpoint(pid_t pid, const CheckpointOptions& opts, CheckpointBase& base);

}  // namespace vos::capture
