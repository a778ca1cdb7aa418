// Host side (keeper). State shared by the capture steps of one checkpoint.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capture/lock_capture.h"
#include "capture/obstacles.h"
#include "capture/page_ranges.h"
#include "capture/page_reference.h"
#include "capture/ptrace_session.h"
#include "fds/fd_kind.h"
#include "image/image_writer.h"
#include "image/process_model.h"

namespace vos::capture {

// How one mapping's pages are captured (not part of the image).
struct AreaPlan {
  bool stores_pages = false;       // anonymous or privately modified pages exist to store
  bool store_all = false;          // read every page (zeros dropped), not just the touched ones
  bool read_while_frozen = false;  // a copy-on-write snapshot would not hold its true content
  bool trackable = false;          // its writes can be tracked (incremental checkpoints)
  bool explicit_ranges = false;    // store exactly `ranges` (incremental), not what pagemap says
  PageRanges ranges;
};

// Which planned areas a write_pages call copies: all; those read while frozen / from the
// snapshot (copy-on-write checkpoint); those with explicit ranges / the others (incremental).
enum class PagePass { kAll, kFrozenOnly, kSnapshotOnly, kExplicitOnly, kImplicitOnly };

struct CaptureContext {
  pid_t pid = 0;
  std::string who;  // the process in messages, as its user knows it ("process 1234": host pid)
  std::string log;  // the program's vos log (see fds::ProbeSet::log_ino)
  dev_t console_rdev = 0;  // the program's vos pty (see fds::ProbeSet::console_rdev)
  // The top process only: the pty's own state, read with the program frozen (CheckpointOptions).
  std::function<Result<image::ConsoleState>()> console_state;
  PtraceSession* session = nullptr;  // null during precheck: nothing is frozen yet
  image::ProcessImage img;
  std::string blobs;  // the image's blobs section, built in memory (registers, pipe data...)
  int mem_fd = -1;    // /proc/PID/mem
  std::vector<AreaPlan> area_plans;          // parallel to img.areas
  std::map<uint64_t, std::string> vm_flags;  // smaps VmFlags by mapping start, read before freezing
  PageReference* reference = nullptr;        // pages equal to their copy here are not stored
  // The program has an IPC namespace of its own (not a program of an older vos in the host's):
  // its System V shared memory is then all its own and is captured.
  bool own_ipc_namespace = true;
  // Incremental: private memory the tracker did not cover at the freeze (mapped since, or not
  // trackable), stored in full; said in the checkpoint's note.
  uint64_t untracked_bytes = 0;
  uint32_t untracked_areas = 0;
  fds::FileContentPolicy files;  // what is kept of regular files' contents
  // Files the program writes, hashed by finish_fds once it runs again.
  std::vector<fds::LateHash> late_hashes;
  // flock locks held only through a mapping of their file, for plan_memory to put on it.
  std::vector<MappedLock> mapped_locks;
  // /proc/locks as read right after the freeze (see checkpoint()): locks the program holds
  // through no descriptor are refused, or kept with the mapping that holds them.
  std::vector<fds::LockLine> proc_locks;
  // File contents the image keeps (deleted files, --with-files), written after `blobs`.
  struct FileContent {
    int fd = -1;
    std::unique_ptr<char[]> bytes;
    size_t size = 0;
  };
  std::vector<FileContent> file_contents;
  // Process trees: what the tree's other processes hold (fds::ProbeSet::elsewhere).
  std::vector<std::pair<std::string, int>> elsewhere;
  // What only the process itself can tell (injected calls), asked beforehand by ask_together;
  // empty: capture_process_state asks it.
  struct Asked {
    std::vector<image::SignalAction> actions;
    std::vector<image::ITimer> itimers;
    uint64_t brk = 0;
    struct Thread {
      image::AltStack altstack;
      uint64_t clear_child_tid = 0;
    };
    std::map<pid_t, Thread> threads;  // those asked (capture_threads asks the others itself)
  };
  std::optional<Asked> asked;

  image::BlobRef add_blob(const void* data, size_t size) {
    image::BlobRef ref{blobs.size(), size};
    blobs.append(static_cast<const char*>(data), size);
    return ref;
  }
};

// Scratch space for injected calls' output: below the thread's red zone, exactly where a signal
// frame would go, so the program cannot be relying on its contents.
inline uint64_t scratch_below_stack(const user_regs_struct& regs) {
  return (regs.rsp - 128 - 512) & ~15ull;
}

// Each part of the process is captured by one step; precheck steps run before anything is
// frozen and add every object vos cannot handle to `obstacles`.
void precheck_memory(pid_t pid, bool own_ipc_namespace, Obstacles& obstacles);

// What a mapping's name in /proc/PID/maps says backs it: a memfd ("/memfd:NAME (deleted)"), or a
// file whose name is gone (not a memfd, /dev/zero or a System V segment, whose names always say
// "(deleted)").
bool names_memfd(const std::string& name);
bool names_deleted_file(const std::string& name);
// `elsewhere`: the descriptors of the tree's other processes (fds::ProbeSet::elsewhere).
void precheck_fds(pid_t pid, const std::string& log, dev_t console_rdev, Obstacles& obstacles,
                  const fds::FileContentPolicy& files,
                  const std::vector<std::pair<std::string, int>>& elsewhere = {});
void precheck_process(pid_t pid, Obstacles& obstacles);
void precheck_posix_timers(pid_t pid, Obstacles& obstacles);

Status capture_threads(CaptureContext& ctx);
Status capture_process_state(CaptureContext& ctx);
// Asks several frozen processes (each ctx's session and syscall instruction set) what
// capture_process_state and capture_threads would ask each by injected calls (handlers,
// interval timers, brk; each thread's alternate stack and clear-tid address), with
// their calls overlapped: one process's round trips through the scheduler no longer wait for
// the other's (a tree's freeze). Sets ctx.asked; a process it could not ask is left for
// capture_process_state to ask.
void ask_together(const std::vector<CaptureContext*>& ctxs);
// capture_threads' own questions to one thread, asked alone (what ask_together did not ask).
Status ask_thread_alone(CaptureContext& ctx, const ThreadStop& stop, CaptureContext::Asked& into);
// After capture_threads: a timer's signal found among the pending ones is taken out of them.
Status capture_posix_timers(CaptureContext& ctx);
Status capture_fds(CaptureContext& ctx);
// After capture_fds, once the program runs again (or with --kill, before the image is
// committed): hashes the files it writes (late_hashes). Returns a note naming the files it
// could not hash, or "".
std::string finish_fds(CaptureContext& ctx);
// When the image is written: gives each stored file content its place after `blobs` (the fds'
// data), from offset `at` on (the blobs' size unless several processes' contents follow them),
// and returns them in that order.
std::vector<std::string_view> place_file_contents(CaptureContext& ctx, uint64_t at);
inline std::vector<std::string_view> place_file_contents(CaptureContext& ctx) {
  return place_file_contents(ctx, ctx.blobs.size());
}
// smaps VmFlags of each mapping, keyed by its start (" rd wr ... " with spaces around each).
Result<std::map<uint64_t, std::string>> read_vm_flags(pid_t pid);
// After a copy-on-write snapshot was read: fails if a mapping read from it was not a faithful
// copy after all (it became do-not-copy or wipe-on-fork between the flags read and the freeze).
Status check_snapshot(const CaptureContext& ctx, pid_t snapshot);
// Lists the mappings (img.areas) and decides how each one's pages are read.
Status plan_memory(CaptureContext& ctx);

// Where injected calls can enter the kernel: any `syscall` instruction of the process's vDSO.
Result<uint64_t> find_syscall_insn(const CaptureContext& ctx);
// Whether `at` still holds a `syscall` instruction (found before the program was stopped).
bool is_syscall_insn(const CaptureContext& ctx, uint64_t at);

// Reads `size` bytes of the process's memory at `addr`.
Status read_memory(const CaptureContext& ctx, uint64_t addr, void* out, size_t size);

}  // namespace vos::capture
