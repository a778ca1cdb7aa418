// Host side (keeper).
#include "capture/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "base/cpu_class.h"
#include "capture/capture_context.h"
#include "capture/page_writer.h"
#include "capture/precopy_round.h"
#include "capture/proc_files.h"
#include "capture/snapshot.h"
#include "capture/sysv_shm_capture.h"
#include "image/finish_image.h"

namespace vos::capture {

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
  return user_error("{}: no syscall instruction found in its vDSO", ctx.who);
}

// Whether `at` still holds a `syscall` instruction (found before the program was stopped).
bool is_syscall_insn(const CaptureContext& ctx, uint64_t at) {
  char code[2] = {};
  return read_memory(ctx, at, code, sizeof code).ok() && code[0] == '\x0f' && code[1] == '\x05';
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Records how long each step took since the previous mark.
class PhaseLog {
 public:
  explicit PhaseLog(std::vector<std::pair<std::string, double>>& out) : out_(out) {}
  void mark(const char* name) {
    auto now = Clock::now();
    out_.emplace_back(name, std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }

 private:
  std::vector<std::pair<std::string, double>>& out_;
  Clock::time_point last_ = Clock::now();
};

// Pages the image itself holds for its memory. Pre-copy may have written more copies (a page
// written again after its copy is stored again at the freeze): those stay in the file,
// unreferenced, and count only as copied.
uint64_t pages_referenced(const image::ProcessImage& img) {
  uint64_t n = 0;
  for (const auto& a : img.areas) {
    for (const auto& r : a.pages) {
      n += r.image == 0 ? r.npages : 0;
    }
  }
  for (const auto& s : img.sysv_shm) {
    for (const auto& r : s.pages) {
      n += r.image == 0 ? r.npages : 0;
    }
  }
  return n;
}

// Hashes the files the program writes (finish_fds) on a thread of its own, once the program
// runs again, beside the writing of its pages.
class FileHashing {
 public:
  explicit FileHashing(CaptureContext& ctx) : ctx_(ctx) {}
  FileHashing(const FileHashing&) = delete;
  FileHashing& operator=(const FileHashing&) = delete;
  ~FileHashing() { (void)finish(); }
  void start() {
    if (!thread_.joinable() && !done_) {
      thread_ = std::thread([this] { note_ = finish_fds(ctx_); });
    }
  }
  // The note naming what could not be hashed ("" if all were).
  std::string finish() {
    if (thread_.joinable()) {
      thread_.join();
    } else if (!done_) {
      note_ = finish_fds(ctx_);
    }
    done_ = true;
    return note_;
  }

 private:
  CaptureContext& ctx_;
  std::thread thread_;
  std::string note_;
  bool done_ = false;
};

// Waits for the files' hashes first (`note` gets what could not be hashed).
Status write_metadata(CaptureContext& ctx, image::ImageWriter& writer, uint64_t* pages_copied,
                      FileHashing& hashing, std::string* note) {
  if (std::string files = hashing.finish(); !files.empty()) {
    *note += (note->empty() ? "" : "; ") + files;
  }
  // An incremental image's area gets its inherited runs first and its stored ones after; the
  // format lists them by address (a lazy restore's eager-page split relies on it).
  for (auto& a : ctx.img.areas) {
    std::sort(a.pages.begin(), a.pages.end(),
              [](const image::PageRun& x, const image::PageRun& y) { return x.vaddr < y.vaddr; });
  }
  *pages_copied = ctx.img.pages_stored;
  ctx.img.pages_stored = pages_referenced(ctx.img);
  auto contents = place_file_contents(ctx);
  return image::finish_image(writer, ctx.blobs, ctx.img, contents);
}

void pause_for_test(const CheckpointOptions& opts, const char* point) {
  if (opts.pause_at == point) {
    std::this_thread::sleep_for(std::chrono::seconds(3));
  }
}

}  // namespace

// Creates the write tracker in a short stop of its own (the userfaultfd must be made by the
// program itself); the stop is recorded in `stats`.
Result<WriteTracker> start_tracking(CaptureContext& ctx, CheckpointStats& stats) {
  auto stop_at = Clock::now();
  auto stop = PtraceSession::freeze(ctx.pid);
  if (!stop) {
    return std::move(stop).error().context(fmt::format("freezing {}", ctx.who));
  }
  ctx.session = &*stop;
  auto at = find_syscall_insn(ctx);
  ctx.session = nullptr;
  if (!at) {
    return std::move(at).error();
  }
  auto tracker = WriteTracker::create(*stop, *at);
  (void)stop->resume();
  stats.add_stop(ms_since(stop_at));
  return tracker;
}

Status precheck(pid_t pid, const std::string& who, const std::string& log, dev_t console_rdev,
                const std::vector<std::string>& known, bool own_ipc_namespace,
                const fds::FileContentPolicy& files) {
  Obstacles obstacles;
  for (const auto& k : known) {
    obstacles.add(user_error("{}", k));
  }
  precheck_process(pid, obstacles);
  precheck_memory(pid, own_ipc_namespace, obstacles);
  precheck_fds(pid, log, console_rdev, obstacles, files);
  return obstacles.result(who);
}

namespace {

// Incremental images copy their (few) pages to memory while the program is stopped, into a buffer
// prepared before the freeze; when they do not fit, a copy-on-write snapshot is taken instead.
// Without a count of the pages written so far, kFrozenCopyMin; with one, twice that count plus
// kFrozenCopySlack for what is written until the freeze.
constexpr uint64_t kFrozenCopyMin = 32ull << 20;
constexpr uint64_t kFrozenCopyMax = 256ull << 20;
constexpr uint64_t kFrozenCopySlack = 4ull << 20;
constexpr uint64_t kFrozenCopyBase = 8ull << 20;       // see frozen_limit
constexpr uint64_t kUserSpaceEnd = 0x7ffffffff000ull;  // x86-64, 4-level page tables

// Pre-copy rounds of an incremental image go on while a round still finds this many written
// pages (copying them at the freeze would cost ~1.5 us each), a few rounds at most: a program
// that writes faster than vos copies never converges.
constexpr uint64_t kRoundConverged = 256;
constexpr int kMaxRounds = 3;

// Whether the page data bypasses the page cache (see CheckpointOptions::page_cache). Compressed
// frames are written as they come (unaligned), so they always go through it.
Status choose_page_cache(const CheckpointOptions& opts, uint64_t expected_bytes,
                         image::ImageWriter& writer) {
  using PageCache = CheckpointOptions::PageCache;
  bool asked = opts.page_cache == PageCache::kBypass;
  bool bypass = asked;
  if (opts.page_cache == PageCache::kAuto && expected_bytes > 0) {
    auto available = available_memory_bytes();
    bypass = available && expected_bytes > *available / 2;
  }
  if (!bypass) {
    return {};
  }
  if (opts.codec != abi::PageCodec::kNone) {
    return asked ? user_error(
                       "page data cannot bypass the page cache when compressed (its "
                       "frames are not page-aligned)")
                 : Status{};
  }
  auto st = writer.bypass_page_cache();
  return asked ? st : Status{};  // if asked for, say why it cannot be done
}

// Decides whether this checkpoint can be incremental; the reason if not.
std::string incremental_refusal(const CheckpointOptions& opts, const CheckpointBase& base) {
  if (!base.has_image() || !base.tracker) {
    if (!opts.parent.empty()) {
      return "";  // reported as an error by the caller
    }
    return "first incremental checkpoint of this program: a full image, writes tracked from now";
  }
  if (auto st = base.check_images(); !st) {
    return st.error().describe() + ": a full image instead";
  }
  return "";
}

}  // namespace

Result<CheckpointStats> checkpoint(pid_t pid, const CheckpointOptions& opts, CheckpointBase& base) {
  auto start = Clock::now();
  const std::string who = opts.who.empty() ? fmt::format("process {}", pid) : opts.who;
  CheckpointStats stats;
  PhaseLog phase(stats.phases);
  if (!opts.parent.empty() && (!base.has_image() || base.images[0].path != opts.parent)) {
    return user_error(
        "{} is not the last checkpoint of this program{}{}: an incremental image "
        "can only build on the last one",
        opts.parent, base.has_image() ? " (that is " : "",
        base.has_image() ? base.images[0].path + ")" : "");
  }
  bool tracking = base.tracker.has_value() || (opts.incremental && !opts.kill);
  bool delta = false;
  // After a restore whose writes were not tracked (lazy): incremental by comparing pages with the
  // restored image (pre-copy only).
  bool compare = opts.incremental && !base.tracker && base.reference && opts.precopy &&
                 !opts.kill && base.check_images().ok();
  if (compare) {
    stats.parent = base.images[0].path;
    stats.note = fmt::format(
        "writes since the restore were not tracked: pages compared with {} (all memory is "
        "read, only what changed is written); tracked from now on",
        stats.parent);
  } else if (opts.incremental) {
    stats.note = incremental_refusal(opts, base);
    delta = stats.note.empty();
    if (delta) {
      stats.parent = base.images[0].path;
    }
  }
  // A full image written mostly while the program runs (an incremental image builds on its
  // parent instead; --kill never lets the program run).
  bool precopy = opts.precopy && !delta && !opts.kill;
  tracking = tracking || precopy;
  // Once the tracker re-protected the written pages, the base is only valid if this image is
  // written: a failure from here on must not let the next incremental image build on it.
  struct ForgetBaseOnFailure {
    CheckpointBase& base;
    bool armed = false;
    bool done = false;
    ~ForgetBaseOnFailure() {
      if (armed && !done) {
        base.forget();
      }
    }
  } guard{base};
  if (auto st = precheck(pid, who, opts.log, opts.console_rdev, opts.obstacles,
                         opts.own_ipc_namespace, opts.files);
      !st) {
    return std::move(st).error();
  }
  phase.mark("precheck");
  auto writer = image::ImageWriter::create(opts.image_path, opts.writer_pid);
  if (!writer) {
    return std::move(writer).error();
  }
  writer->set_page_codec(opts.codec);
  // About how much page data a full image holds (0: an incremental one, or unknown).
  uint64_t expected_bytes = 0;
  if (!delta && !compare) {
    if (auto expected = private_resident_bytes(pid); expected) {
      expected_bytes = *expected;
    }
  }
  if (opts.progress != nullptr) {
    writer->count_page_bytes_in(&opts.progress->page_bytes);
    writer->cancel_when(&opts.progress->cancelled);
    opts.progress->expected_bytes = expected_bytes;
  }
  VOS_TRY(choose_page_cache(opts, expected_bytes, *writer), "image {}", opts.image_path);
  CaptureContext ctx;
  ctx.pid = pid;
  ctx.who = who;
  ctx.log = opts.log;
  ctx.console_rdev = opts.console_rdev;
  ctx.console_state = opts.console_state;
  ctx.img.pid = pid;
  ctx.img.ns_last_pid = opts.ns_last_pid;
  ctx.img.tty_foreground = opts.tty_foreground;
  ctx.img.name = opts.name;
  ctx.img.image_id = image::new_image_id();
  ctx.img.writes_tracked = opts.incremental || base.keep_tracking;
  ctx.own_ipc_namespace = opts.own_ipc_namespace;
  ctx.files = opts.files;
  std::string mem_path = fmt::format("/proc/{}/mem", pid);
  UniqueFd mem(::open(mem_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) {
    return sys_error("opening {}", mem_path);
  }
  ctx.mem_fd = mem.get();
  bool rounds = false;      // incremental pre-copy
  base.follow_moves(true);  // made since the last checkpoint
  if (precopy && !base.tracker) {
    auto tracker = start_tracking(ctx, stats);
    if (tracker) {
      base.tracker.emplace(std::move(*tracker));
    } else {
      precopy = false;
      tracking = opts.incremental;
      stats.note = tracker.error().describe() + ": a copy-on-write snapshot instead of pre-copy";
    }
    phase.mark("start_tracking");
  }
  // From here until the freeze, and again once the program runs, vos works beside it: its
  // threads take only CPU time the program leaves (base/cpu_class.h).
  struct ForegroundAtEnd {
    ~ForegroundAtEnd() { cpu_class::all_threads_to_foreground(); }
  } foreground_at_end;
  cpu_class::StarvationGuard starvation_guard;
  cpu_class::all_threads_to_background();
  if (precopy) {
    guard.armed = true;
    VOS_TRY(writer->begin_section(abi::SectionType::kPages), "pages");
    pause_for_test(opts, "precopy");
    std::string compared;
    VOS_TRY(precopy_pages(pid, base, *writer, ctx.img.image_id, opts.image_path, compare,
                          &ctx.img.pages_stored, &compared),
            "pre-copy of {}", who);
    if (!compared.empty()) {
      stats.note += " (" + compared + ")";
    }
    phase.mark("precopy");
    delta = true;  // against the pages just copied
  } else if (delta && opts.precopy && !opts.kill) {
    // The same for an incremental image: the pages written since the base are copied while the
    // program runs, and the freeze copies only those written since the last round.
    guard.armed = true;
    VOS_TRY(writer->begin_section(abi::SectionType::kPages), "pages");
    rounds = true;
    for (int i = 0; i < kMaxRounds; ++i) {
      auto round = precopy_written_pages(pid, base, *writer, ctx.img.image_id, opts.image_path);
      if (!round) {
        return std::move(round).error().context(fmt::format("checkpoint of {}", who));
      }
      ctx.img.pages_stored += round->pages_stored;
      ctx.untracked_bytes += round->untracked_bytes;
      ctx.untracked_areas += round->untracked_areas;
      if (round->pages_copied < kRoundConverged) {
        break;
      }
    }
    phase.mark("precopy_rounds");
  }

  // Read before the freeze (smaps is slow): how each mapping can be read, and its madvise state.
  auto flags = read_vm_flags(pid);
  if (!flags) {
    return std::move(flags).error();
  }
  ctx.vm_flags = std::move(*flags);
  // At most this many written pages are copied while the program is stopped; more, and the
  // freeze takes a copy-on-write snapshot instead.
  uint64_t frozen_limit = 0;
  if (delta && !opts.kill) {
    // Faulting the buffer in is slow (the VM's fresh memory: a 21 MiB one took 12-16 ms of a
    // 16 MiB program's first checkpoint, ~50 ms), and the keeper keeps it: size it for what the
    // freeze will copy, the pages written since they were last protected (counted now) and what
    // the program writes until the freeze, or as much as the last freeze copied. (--kill writes
    // its pages straight to the image.)
    uint64_t want = kFrozenCopyMin;
    if (base.tracker) {
      if (auto written = base.tracker->written_bytes(0, kUserSpaceEnd); written) {
        want = 2 * *written + kFrozenCopySlack;
      }
    }
    want = std::max(want, 2 * base.last_stored_bytes);
    // Copying while stopped (~0.3 ms per MiB here) must not cost more than the snapshot would
    // (~2.5 ms, plus ~25 ms per GiB of resident memory for its page tables): a program writing
    // all of its 32 MiB during the pre-copy paused 9-12 ms with its pages copied, 4-5 ms with a
    // snapshot.
    frozen_limit = kFrozenCopyMax;
    if (auto rss = resident_bytes(pid); rss) {
      frozen_limit = std::min(frozen_limit, kFrozenCopyBase + *rss / 16);
    }
    want = std::min(want, frozen_limit);
    VOS_TRY(base.frozen.reserve(want), "buffer for incremental pages");
    frozen_limit = std::min<uint64_t>(frozen_limit, base.frozen.capacity());
  }
  // Where injected calls enter the kernel, found while the program runs (its maps and vDSO take
  // a few hundred microseconds to read) and checked once it is stopped.
  auto insn = find_syscall_insn(ctx);
  if (!insn) {
    return std::move(insn).error();
  }
  phase.mark("read_flags");
  // Starting disk writes can block on a busy disk: not while the program waits for us (with
  // --kill it never runs again, so the sooner the disk starts, the better).
  writer->set_writeback_behind(opts.kill);
  cpu_class::all_threads_to_foreground();  // the program waits for every step from here
  phase.mark("foreground");
  // Reading /proc/locks takes the kernel's file_rwsem for writing, which waits for an RCU grace
  // period (5-20 ms here) unless another writer left it within about one: read once while the
  // program runs, the read right after the freeze takes ~0.1 ms.
  (void)fds::read_proc_locks();
  phase.mark("prime_locks");
  auto frozen_at = Clock::now();
  auto session = PtraceSession::freeze(pid);
  if (!session) {
    return std::move(session).error().context(fmt::format("freezing {}", who));
  }
  ctx.session = &*session;
  auto proc_locks = fds::read_proc_locks();
  if (!proc_locks) {
    return std::move(proc_locks).error().context(fmt::format("checkpoint of {}", who));
  }
  ctx.proc_locks = std::move(*proc_locks);
  phase.mark("freeze");
  if (!is_syscall_insn(ctx, *insn)) {
    insn = find_syscall_insn(ctx);  // the vDSO moved (mremap) meanwhile
    if (!insn) {
      return std::move(insn).error();
    }
  }
  session->set_syscall_insn(*insn);

  WriterSink to_image(*writer);
  std::optional<MemorySink> to_memory;
  // Incremental freeze (also the end of a pre-copy): the written pages are found and copied on a
  // second thread while this one captures the kernel state, which needs injected calls. The
  // order does not matter: vos writes nothing in the frozen program but injected calls' results
  // below a thread's stack pointer, which is not state (such a page is just stored again next
  // time).
  bool overlap = delta && base.tracker.has_value() && !opts.kill;
  if (overlap) {
    // Fds first, on this thread: the plan needs them (memfds), and both threads add blobs.
    VOS_TRY(capture_fds(ctx), "checkpoint of {}", who);
    phase.mark("fds");
    guard.armed = true;
    if (!precopy && !rounds) {
      VOS_TRY(writer->begin_section(abi::SectionType::kPages), "pages");
    }
    Status pages;
    std::thread worker([&] {
      pages = [&]() -> Status {
        VOS_TRY(plan_memory(ctx), "memory layout");
        VOS_TRY(capture_sysv_shm(ctx), "System V shared memory");
        base.follow_moves(false);  // made during the pre-copy
        VOS_TRY(sync_tracking(ctx, base, true), "tracking writes");
        if (planned_bytes(ctx) > frozen_limit) {
          return {};  // too many: read from a copy-on-write snapshot below
        }
        VOS_TRY(write_pages(ctx, to_image, pid, PagePass::kImplicitOnly), "memory");
        to_memory.emplace(base.frozen, writer->section_position());
        return write_pages(ctx, *to_memory, pid, PagePass::kExplicitOnly);
      }();
    });
    Status state = capture_process_state(ctx);
    if (state) {
      state = capture_threads(ctx);
    }
    if (state) {
      state = capture_posix_timers(ctx);
    }
    worker.join();
    VOS_TRY(std::move(state), "checkpoint of {}", who);
    VOS_TRY(std::move(pages), "checkpoint of {}", who);
    phase.mark("state_and_pages");
  } else {
    // Kernel state first (it needs injected calls), then fds, then the memory layout, which
    // must be read last so that nothing vos did inside the process is missing from it.
    VOS_TRY(capture_process_state(ctx), "checkpoint of {}", who);
    phase.mark("process_state");
    VOS_TRY(capture_threads(ctx), "checkpoint of {}", who);
    phase.mark("threads");
    VOS_TRY(capture_posix_timers(ctx), "checkpoint of {}", who);
    phase.mark("posix_timers");
    VOS_TRY(capture_fds(ctx), "checkpoint of {}", who);
    phase.mark("fds");
    VOS_TRY(plan_memory(ctx), "checkpoint of {}", who);
    VOS_TRY(capture_sysv_shm(ctx), "checkpoint of {}", who);
    phase.mark("plan_memory");
    if (tracking && !base.tracker) {
      auto tracker = WriteTracker::create(*session, *insn);
      if (tracker) {
        base.tracker.emplace(std::move(*tracker));
      } else {
        tracking = delta = false;
        stats.note = tracker.error().describe() + ": a full image, writes not tracked";
      }
    }
    if (tracking) {
      // Writes are counted from this freeze on; nothing vos does to the program follows.
      guard.armed = true;
      base.follow_moves(true);
      VOS_TRY(sync_tracking(ctx, base, delta), "checkpoint of {}", who);
      phase.mark("track_writes");
    }
    if (!precopy && !rounds) {
      VOS_TRY(writer->begin_section(abi::SectionType::kPages), "pages");
    }
  }
  auto resume_program = [&]() -> Status {
    pause_for_test(opts, "frozen");
    auto r = session->resume();
    stats.add_stop(ms_since(frozen_at));
    cpu_class::all_threads_to_background();
    writer->set_writeback_behind(true);
    phase.mark("resume");
    if (!r) {
      return std::move(r).error().context("resuming after checkpoint");
    }
    return {};
  };
  // Declared after ctx, whose fds it fills in: joined before ctx goes, even on an error.
  FileHashing hashing(ctx);
  if (opts.kill) {
    pause_for_test(opts, "frozen");
    // Never resumed: everything is read from the frozen program, and nothing it could do
    // afterwards can postdate the image.
    hashing.start();
    VOS_TRY(write_pages(ctx, to_image, pid, PagePass::kAll), "memory of {}", who);
    VOS_TRY(writer->end_section(), "pages");
    VOS_TRY(write_metadata(ctx, *writer, &stats.pages_copied, hashing, &stats.note),
            "writing image {}", opts.image_path);
    session->abandon();
    if (opts.before_kill) {
      opts.before_kill(opts.image_path);
    }
    ::kill(pid, SIGKILL);
    stats.add_stop(ms_since(frozen_at));
  } else if (delta && (to_memory || (!overlap && planned_bytes(ctx) <= frozen_limit))) {
    // Few pages: copied to memory while stopped, written out once the program runs again.
    // Memory without explicit ranges (shared, read in full) goes to the image first.
    base.last_stored_bytes = planned_bytes(ctx);
    if (!to_memory) {
      VOS_TRY(write_pages(ctx, to_image, pid, PagePass::kImplicitOnly), "memory of {}", who);
      to_memory.emplace(base.frozen, writer->section_position());
      VOS_TRY(write_pages(ctx, *to_memory, pid, PagePass::kExplicitOnly), "memory of {}", who);
      phase.mark("frozen_pages");
    }
    VOS_TRY(resume_program(), "checkpoint of {}", who);
    hashing.start();
    pause_for_test(opts, "writing");
    VOS_TRY(to_memory->flush_to(*writer), "writing pages");
    VOS_TRY(writer->end_section(), "pages");
    VOS_TRY(write_metadata(ctx, *writer, &stats.pages_copied, hashing, &stats.note),
            "writing image {}", opts.image_path);
    phase.mark("commit");
  } else {
    // Copy-on-write: the program runs on while its snapshot is written. Memory a snapshot does
    // not freeze (shared, do-not-copy) is read now, while the program is still stopped.
    if (delta) {
      base.last_stored_bytes = planned_bytes(ctx);
    }
    auto snap = Snapshot::take(*session, *insn, false);
    if (!snap) {
      return std::move(snap).error().context(fmt::format("checkpoint of {}", who));
    }
    phase.mark("snapshot");
    VOS_TRY(write_pages(ctx, to_image, pid, PagePass::kFrozenOnly), "memory of {}", who);
    phase.mark("frozen_pages");
    VOS_TRY(resume_program(), "checkpoint of {}", who);
    hashing.start();
    pause_for_test(opts, "writing");
    VOS_TRY(write_pages(ctx, to_image, snap->pid(), PagePass::kSnapshotOnly),
            "memory of {} (snapshot)", who);
    phase.mark("snapshot_pages");
    VOS_TRY(check_snapshot(ctx, snap->pid()), "checkpoint of {}", who);
    VOS_TRY(writer->end_section(), "pages");
    VOS_TRY(write_metadata(ctx, *writer, &stats.pages_copied, hashing, &stats.note),
            "writing image {}", opts.image_path);
    phase.mark("commit");
  }
  stats.image = opts.image_path;
  stats.bytes = writer->bytes_written();
  stats.page_cache_bypassed = writer->bypasses_page_cache();  // false if it had to fall back
  stats.codec = opts.codec;
  stats.pages_logical_bytes = writer->pages_logical_bytes();
  stats.pages_stored_bytes = writer->pages_stored_bytes();
  stats.pages = ctx.img.pages_stored;
  stats.pages_inherited = ctx.img.pages_inherited;
  if (ctx.untracked_bytes > 0) {
    stats.note += fmt::format(
        "{}{} KiB in {} area(s) not tracked since the last checkpoint (mapped since, or memory "
        "the kernel would not track): stored in full",
        stats.note.empty() ? "" : "; ", ctx.untracked_bytes >> 10, ctx.untracked_areas);
  }
  if (!base.untracked_why.empty()) {
    stats.note += fmt::format("{}memory that could not be tracked, stored in full: {}",
                              stats.note.empty() ? "" : "; ", base.untracked_why);
    base.untracked_why.clear();
  }
  stats.threads = ctx.img.threads.size();
  stats.file_locks = image::has_file_locks(ctx.img);
  for (const auto& t : ctx.img.threads) {
    stats.tids.push_back(t.tid);
  }
  if (opts.incremental) {
    base.keep_tracking = true;
  }
  if (tracking && !opts.kill && !base.keep_tracking) {
    // Pre-copy only: nothing builds on this image, so the program is left untracked (closing
    // the userfaultfd unregisters its memory).
    base.tracker.reset();
    base.forget();
    guard.done = true;
  } else if (tracking && !opts.kill) {
    struct stat st {};
    if (::stat(opts.image_path.c_str(), &st) == 0) {
      record_base(base, ctx, opts.image_path, static_cast<uint64_t>(st.st_size));
      guard.done = true;
    }
  }
  stats.background_cpu = starvation_guard.summary();
  stats.total_ms = ms_since(start);
  return stats;
}

}  // namespace vos::capture
