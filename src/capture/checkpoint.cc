// Host side (keeper).
#include "capture/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "capture/capture_context.h"
#include "capture/proc_files.h"

namespace vos::capture {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Any `syscall` instruction the process can execute: the vDSO always has one.
Result<uint64_t> find_syscall_insn(const CaptureContext& ctx) {
  auto maps = read_maps(ctx.pid);
  if (!maps) {
    return std::move(maps).error();
  }
  for (const auto& m : *maps) {
    if (m.name != "[vdso]") {
      continue;
    }
    std::string code(m.end - m.start, '\0');
    VOS_TRY(read_memory(ctx, m.start, code.data(), code.size()), "reading vDSO");
    auto at = code.find("\x0f\x05");
    if (at != std::string::npos) {
      return m.start + at;
    }
  }
  return user_error("process {}: no syscall instruction found in its vDSO", ctx.pid);
}

Status write_metadata(CaptureContext& ctx, image::ImageWriter& writer) {
  VOS_TRY(writer.begin_section(abi::SectionType::kBlobs), "blobs");
  VOS_TRY(writer.write(ctx.blobs.data(), ctx.blobs.size()), "blobs");
  VOS_TRY(writer.end_section(), "blobs");
  std::string meta = image::to_json(ctx.img).dump(1);
  VOS_TRY(writer.begin_section(abi::SectionType::kMeta), "meta");
  VOS_TRY(writer.write(meta.data(), meta.size()), "meta");
  VOS_TRY(writer.end_section(), "meta");
  return writer.commit();
}

// A copy-on-write copy of the frozen program's memory: a clone of its main thread without
// CLONE_VM, made a child of the keeper (CLONE_PARENT) with no exit signal, so the program never
// learns of it; it is seized from birth and never runs a single instruction.
class Snapshot {
 public:
  static Result<Snapshot> take(PtraceSession& session, uint64_t syscall_insn) {
    pid_t pid = session.pid();
    constexpr long kCloneParent = 0x00008000;
    auto saved = get_regs(pid);
    if (!saved) {
      return std::move(saved).error();
    }
    uint64_t old_mask = 0, all = ~0ull;
    ::ptrace(PTRACE_GETSIGMASK, pid, sizeof old_mask, &old_mask);
    ::ptrace(PTRACE_SETSIGMASK, pid, sizeof all, &all);
    ::ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE);
    user_regs_struct r = *saved;
    r.rip = syscall_insn;
    r.rax = SYS_clone;
    r.orig_rax = static_cast<unsigned long long>(-1);
    r.rdi = kCloneParent;  // exit signal 0
    r.rsi = r.rdx = r.r10 = r.r8 = 0;
    Snapshot snap;
    Status st = set_regs(pid, r);
    for (int stop = 0; st && stop < 3; ++stop) {  // enter, clone event, exit
      int status = 0;
      if (::ptrace(PTRACE_SYSCALL, pid, 0, 0) != 0 || ::waitpid(pid, &status, __WALL) != pid) {
        st = sys_error("cloning process {} for a snapshot", pid);
        break;
      }
      if ((status >> 8) == (SIGTRAP | (PTRACE_EVENT_CLONE << 8))) {
        unsigned long child = 0;
        ::ptrace(PTRACE_GETEVENTMSG, pid, 0, &child);
        snap.child_ = static_cast<pid_t>(child);
      } else if (!WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80)) {
        st = user_error("process {}: unexpected stop {:#x} while cloning", pid, status);
      }
    }
    ::ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD);
    (void)set_regs(pid, *saved);
    ::ptrace(PTRACE_SETSIGMASK, pid, sizeof old_mask, &old_mask);
    if (snap.child_ > 0) {
      int status = 0;
      ::waitpid(snap.child_, &status, __WALL);  // its first stop, before any instruction
    }
    if (!st) {
      return std::move(st).error();
    }
    if (snap.child_ <= 0) {
      return user_error("process {}: clone for a snapshot reported no child", pid);
    }
    return snap;
  }

  Snapshot() = default;
  Snapshot(Snapshot&& o) noexcept : child_(std::exchange(o.child_, 0)) {}
  Snapshot& operator=(Snapshot&&) = delete;
  ~Snapshot() {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, __WALL);
    }
  }
  pid_t pid() const { return child_; }

 private:
  pid_t child_ = 0;
};

}  // namespace

Status precheck(pid_t pid) {
  VOS_TRY(precheck_process(pid), "precheck");
  VOS_TRY(precheck_memory(pid), "precheck");
  VOS_TRY(precheck_fds(pid), "precheck");
  return {};
}

Result<CheckpointStats> checkpoint(pid_t pid, const CheckpointOptions& opts) {
  auto start = Clock::now();
  VOS_TRY(precheck(pid), "checkpoint of process {}", pid);
  auto writer = image::ImageWriter::create(opts.image_path);
  if (!writer) {
    return std::move(writer).error();
  }
  writer->set_page_codec(opts.codec);
  CaptureContext ctx;
  ctx.pid = pid;
  ctx.img.pid = pid;
  ctx.img.name = opts.name;
  std::string mem_path = fmt::format("/proc/{}/mem", pid);
  UniqueFd mem(::open(mem_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) {
    return sys_error("opening {}", mem_path);
  }
  ctx.mem_fd = mem.get();

  if (!opts.kill) {
    auto flags = read_vm_flags(pid);
    if (!flags) {
      return std::move(flags).error();
    }
    ctx.vm_flags = std::move(*flags);
  }
  auto frozen_at = Clock::now();
  auto session = PtraceSession::freeze(pid);
  if (!session) {
    return std::move(session).error().context(fmt::format("freezing process {}", pid));
  }
  ctx.session = &*session;
  auto insn = find_syscall_insn(ctx);
  if (!insn) {
    return std::move(insn).error();
  }
  session->set_syscall_insn(*insn);

  // Kernel state first (it needs injected calls), then fds, then the memory layout, which must
  // be read last so that nothing vos did inside the process is missing from it.
  VOS_TRY(capture_process_state(ctx), "checkpoint of process {}", pid);
  VOS_TRY(capture_threads(ctx), "checkpoint of process {}", pid);
  VOS_TRY(capture_fds(ctx), "checkpoint of process {}", pid);
  VOS_TRY(plan_memory(ctx), "checkpoint of process {}", pid);
  VOS_TRY(writer->begin_section(abi::SectionType::kPages), "pages");

  CheckpointStats stats;
  if (opts.kill) {
    // Never resumed: everything is read from the frozen program, and nothing it could do
    // afterwards can postdate the image.
    VOS_TRY(write_pages(ctx, *writer, pid, PagePass::kAll), "memory of process {}", pid);
    VOS_TRY(writer->end_section(), "pages");
    VOS_TRY(write_metadata(ctx, *writer), "writing image {}", opts.image_path);
    session->abandon();
    ::kill(pid, SIGKILL);
    stats.pause_ms = ms_since(frozen_at);
  } else {
    // Copy-on-write: the program runs on while its snapshot is written. Memory a snapshot does
    // not freeze (shared, do-not-copy) is read now, while the program is still stopped.
    auto snap = Snapshot::take(*session, *insn);
    if (!snap) {
      return std::move(snap).error().context(fmt::format("checkpoint of process {}", pid));
    }
    VOS_TRY(write_pages(ctx, *writer, pid, PagePass::kFrozenOnly), "memory of process {}", pid);
    auto r = session->resume();
    stats.pause_ms = ms_since(frozen_at);
    if (!r) {
      return std::move(r).error().context("resuming after checkpoint");
    }
    VOS_TRY(write_pages(ctx, *writer, snap->pid(), PagePass::kSnapshotOnly),
            "memory of process {} (snapshot)", pid);
    VOS_TRY(check_snapshot(ctx, snap->pid()), "checkpoint of process {}", pid);
    VOS_TRY(writer->end_section(), "pages");
    VOS_TRY(write_metadata(ctx, *writer), "writing image {}", opts.image_path);
  }
  stats.image = opts.image_path;
  stats.bytes = writer->bytes_written();
  stats.codec = opts.codec;
  stats.pages_logical_bytes = writer->pages_logical_bytes();
  stats.pages_stored_bytes = writer->pages_stored_bytes();
  stats.pages = ctx.img.pages_stored;
  stats.threads = ctx.img.threads.size();
  stats.total_ms = ms_since(start);
  return stats;
}

}  // namespace vos::capture
