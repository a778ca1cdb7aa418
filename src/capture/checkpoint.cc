// Host side (keeper).
#include "capture/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

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

Status write_image(CaptureContext& ctx, image::ImageWriter& writer) {
  VOS_TRY(capture_memory(ctx, writer), "memory");
  VOS_TRY(writer.begin_section(abi::SectionType::kBlobs), "blobs");
  VOS_TRY(writer.write(ctx.blobs.data(), ctx.blobs.size()), "blobs");
  VOS_TRY(writer.end_section(), "blobs");
  std::string meta = image::to_json(ctx.img).dump(1);
  VOS_TRY(writer.begin_section(abi::SectionType::kMeta), "meta");
  VOS_TRY(writer.write(meta.data(), meta.size()), "meta");
  VOS_TRY(writer.end_section(), "meta");
  return writer.commit();
}

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

  // Kernel state first (it needs injected calls), then fds, then memory, which must be read last
  // so that nothing vos did inside the process is missing from it.
  VOS_TRY(capture_process_state(ctx), "checkpoint of process {}", pid);
  VOS_TRY(capture_threads(ctx), "checkpoint of process {}", pid);
  VOS_TRY(capture_fds(ctx), "checkpoint of process {}", pid);
  VOS_TRY(write_image(ctx, *writer), "writing image {}", opts.image_path);

  CheckpointStats stats;
  stats.image = opts.image_path;
  stats.bytes = writer->bytes_written();
  stats.pages = ctx.img.pages_stored;
  stats.threads = ctx.img.threads.size();
  if (opts.kill) {
    // Never resumed: nothing the program does can postdate the image.
    session->abandon();
    ::kill(pid, SIGKILL);
    stats.pause_ms = ms_since(frozen_at);
  } else {
    auto r = session->resume();
    stats.pause_ms = ms_since(frozen_at);
    if (!r) {
      return std::move(r).error().context("resuming after checkpoint");
    }
  }
  stats.total_ms = ms_since(start);
  return stats;
}

}  // namespace vos::capture
