// Host side (the new process that already carries the program's pid, before the blob). Recreates
// fds and process attributes with libc's help, then lays out the blob region and jumps into it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "abi/restore_abi.h"
#include "base/fast_hash.h"
#include "capture/proc_files.h"
#include "image/sysv_shm_layout.h"
#include "restore/eager_pages.h"
#include "restore/fd_restore.h"
#include "restore/huge_pages.h"
#include "restore/lock_restore.h"
#include "restore/page_checks_plan.h"
#include "restore/posix_timer_restore.h"
#include "restore/restore.h"
#include "restore/sysv_sem_msg_restore.h"
#include "restore/sysv_shm_restore.h"
#include "restore/terminal_restore.h"

extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace vos::restore {

namespace {

using abi::BlobArea;
using abi::BlobPageRun;
using abi::BlobSiginfo;
using abi::BlobThread;
using abi::RestoreArgs;

// The blob's record of mapping `a`: its range, protection and advice, with no descriptor yet.
BlobArea blob_area_of(const image::MemoryArea& a) {
  BlobArea b{};
  b.start = a.start;
  b.end = a.end;
  b.prot = a.prot;
  b.fd = -1;
  b.advice = a.advice;
  return b;
}

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMainStack = 256 * 1024;
constexpr uint64_t kBlobSlack = 64 * 1024;  // .bss and alignment beyond the code's file size
constexpr uint64_t kTaskSize = 0x7ffffffff000ull;
constexpr uint32_t kRseqSig = 0x53053053;

uint64_t round_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

struct Range {
  uint64_t start, end;
};

// First gap of `size` bytes (2 MiB aligned) that overlaps nothing in `used`.
Result<uint64_t> find_gap(std::vector<Range> used, uint64_t size) {
  std::sort(used.begin(), used.end(),
            [](const Range& a, const Range& b) { return a.start < b.start; });
  uint64_t cand = 0x10000000;
  for (const auto& r : used) {
    if (r.end <= cand) {
      continue;
    }
    if (r.start >= cand + size) {
      break;
    }
    cand = round_up(r.end, 2 << 20);
  }
  if (cand + size > kTaskSize) {
    return user_error("no free address range of {} bytes for the restorer", size);
  }
  return cand;
}

struct SelfVdso {
  std::map<std::string, Range> parts;  // "[vdso]", "[vvar]", "[vvar_vclock]"
};

const char* area_map_name(image::AreaKind k) {
  switch (k) {
    case image::AreaKind::kVdso:
      return "[vdso]";
    case image::AreaKind::kVvar:
      return "[vvar]";
    case image::AreaKind::kVvarVclock:
      return "[vvar_vclock]";
    default:
      return nullptr;
  }
}

Status restore_attributes(const image::ProcessImage& p) {
  // The keeper is session leader and group 1; the program may lead its own group or session
  // (a process of a tree already does: it was made so before its children).
  if (p.sid == p.pid && ::getsid(0) != p.pid && ::setsid() < 0) {
    return sys_error("setsid");
  }
  if (p.sid != p.pid && p.pgid == p.pid && ::getpgid(0) != p.pid && ::setpgid(0, 0) != 0) {
    return sys_error("setpgid");
  }
  if (::chdir(p.cwd.c_str()) != 0) {
    return sys_error("working directory {}", p.cwd);
  }
  ::umask(p.umask);
  for (size_t res = 0; res < p.rlimits.size() && res < RLIM_NLIMITS; ++res) {
    rlimit64 now{};
    ::prlimit64(0, static_cast<__rlimit_resource>(res), nullptr, &now);
    rlimit64 want{p.rlimits[res].first, p.rlimits[res].second};
    if (now.rlim_cur == want.rlim_cur && now.rlim_max == want.rlim_max) {
      continue;
    }
    if (::prlimit64(0, static_cast<__rlimit_resource>(res), &want, nullptr) != 0) {
      return sys_error("resource limit {}", res);
    }
  }
  if (::personality(p.personality) < 0) {
    return sys_error("personality {:#x}", p.personality);
  }
  // Per address space, which this process hands to the program; before any memory is mapped.
  if (p.thp_disabled && ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
    return sys_error("prctl(PR_SET_THP_DISABLE)");
  }
  return {};
}

Status build_and_jump(const LoadedImage& img, int image_fd, const std::vector<int>& parent_fds,
                      int info_fd, int log_fd, std::vector<int> helpers, const TreeShared* tree) {
  const auto& p = img.proc;
  const std::string& code = blob_code();

  // The kernel's vDSO of this process moves to where the program had its own.
  auto self_maps = capture::read_maps(::getpid());
  if (!self_maps) {
    return std::move(self_maps).error();
  }
  SelfVdso self;
  std::vector<Range> used;
  for (const auto& m : *self_maps) {
    used.push_back({m.start, m.end});
    if (m.name == "[vdso]" || m.name == "[vvar]" || m.name == "[vvar_vclock]") {
      self.parts[m.name] = {m.start, m.end};
    }
  }
  for (const auto& a : p.areas) {
    used.push_back({a.start, a.end});
  }
  // A shmat maps its whole segment, also over what the program had unmapped of it since: the
  // restorer's own memory must not be there.
  auto attachments = image::shm_attachments(p);
  if (!attachments) {
    return std::move(attachments).error();
  }
  for (const auto& att : *attachments) {
    used.push_back({att.base, att.end});
  }

  // Files behind mappings, opened once each, except files the program holds POSIX locks on: the
  // blob closes what the restore opened, and a close releases them.
  const PosixLockedFiles locked = PosixLockedFiles::of(p);
  std::map<std::string, int> map_fds;
  std::vector<BlobArea> areas;
  std::vector<BlobPageRun> runs;
  std::vector<abi::BlobMove> moves;
  const ThpMode thp = p.thp_disabled ? ThpMode::kNever : current_thp_mode();
  const std::vector<PageSpan> eager = img.lazy ? eager_pages(p) : std::vector<PageSpan>{};
  for (const auto& a : p.areas) {
    if (const char* name = area_map_name(a.kind)) {
      auto it = self.parts.find(name);
      if (it == self.parts.end() || it->second.end - it->second.start != a.end - a.start) {
        return user_error(
            "the kernel's {} differs from the checkpointed one (size {:#x}); "
            "restoring across kernel versions is not supported yet",
            name, a.end - a.start);
      }
      for (const auto& att : *attachments) {
        if (a.start < att.end && att.base < a.end) {
          return user_error(
              "the program's {} at {:#x} lies inside its attachment of System V "
              "segment {} at {:#x}",
              name, a.start, att.id, att.base);
        }
      }
      moves.push_back({it->second.start, a.start, a.end - a.start});
      continue;
    }
    if (a.kind == image::AreaKind::kVsyscall) {
      continue;
    }
    if (a.kind == image::AreaKind::kSysvShm) {
      // The first mapping of an attachment (offset 0 in the segment; shm_attachments checked
      // it) brings the shmat of the whole segment, then the munmaps of what is missing of it.
      if (a.file_offset == 0) {
        auto att = std::find_if(attachments->begin(), attachments->end(),
                                [&](const image::ShmAttachment& x) { return x.base == a.start; });
        BlobArea op{};
        op.start = att->base;
        op.end = att->end;
        op.fd = att->id;
        op.first_run = runs.size();
        op.flags = abi::kAreaShmAttach | abi::kAreaShared |
                   (att->rdonly ? uint32_t{abi::kAreaShmRdonly} : 0u);
        areas.push_back(op);
        for (const auto& [from, to] : image::shm_holes(p, *att)) {
          BlobArea hole{};
          hole.start = from;
          hole.end = to;
          hole.fd = -1;
          hole.first_run = runs.size();
          hole.flags = abi::kAreaHole;
          areas.push_back(hole);
        }
      }
      BlobArea part = blob_area_of(a);
      part.first_run = runs.size();
      part.flags = abi::kAreaShmPart | abi::kAreaShared;
      areas.push_back(part);
      continue;
    }
    if (a.shared_object != 0) {
      // The tree's object, made by its first process (tree_restore.cc).
      auto it = tree != nullptr ? tree->memory.find(a.shared_object)
                                : decltype(tree->memory)::const_iterator{};
      if (tree == nullptr || it == tree->memory.end()) {
        return user_error("mapping at {:#x}: corrupt image: shared object {} was not made", a.start,
                          a.shared_object);
      }
      BlobArea b = blob_area_of(a);
      b.flags = abi::kAreaShared | abi::kAreaSharedObject;
      b.file_offset = it->second + a.file_offset;
      b.first_run = runs.size();
      areas.push_back(b);
      continue;
    }
    BlobArea b = blob_area_of(a);
    b.flags = (a.shared ? uint32_t{abi::kAreaShared} : 0u) |
              (a.growsdown ? uint32_t{abi::kAreaGrowsDown} : 0u);
    if (a.kind == image::AreaKind::kAnon || a.kind == image::AreaKind::kSharedAnon) {
      b.flags |= abi::kAreaMapAnon;
      if (!a.shared && huge_pages_allowed(thp, a.advice, a.start, a.end)) {
        b.flags |= abi::kAreaHugePages;
      }
    } else if (a.kind == image::AreaKind::kMemfd) {
      b.fd = a.memfd;
      b.file_offset = a.file_offset;
    } else if (a.kind == image::AreaKind::kDeletedFile) {
      // Through the program's fd, already recreated: the mapping and the fd are one file again.
      // That fd may not allow this mapping (a read-only fd, a mapping made through another fd
      // since closed): then a new descriptor of the same file.
      bool rw = a.shared && (a.prot & PROT_WRITE);
      int access = -1;
      for (const auto& f : p.fds) {
        if (f.fd == a.memfd) {
          access = f.flags & O_ACCMODE;
        }
      }
      b.fd = a.memfd;
      if (access != O_RDWR && (rw || access != O_RDONLY)) {
        std::string key = fmt::format("\nfd {}{}", a.memfd, rw ? "\n+w" : "");
        auto it = map_fds.find(key);
        if (it == map_fds.end()) {
          int fd = ::open(fmt::format("/proc/self/fd/{}", a.memfd).c_str(),
                          (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
          if (fd < 0) {
            return sys_error("opening deleted file {} again to map it at {:#x}", a.name, a.start);
          }
          it = map_fds.emplace(key, fd).first;
          helpers.push_back(fd);
        }
        b.fd = it->second;
      }
      b.file_offset = a.file_offset;
    } else {
      bool rw = a.shared && (a.prot & PROT_WRITE);
      auto own = locked.fd_for(a.name, rw);
      if (!own) {
        return std::move(own).error().context(fmt::format("mapping at {:#x}", a.start));
      }
      std::string key = a.name + (rw ? "\n+w" : "");
      if (!a.locks.empty()) {
        // The flock locks this mapping's open file description holds: one of its own.
        if (*own >= 0) {
          return user_error(
              "mapping at {:#x}: {} holds both POSIX locks of the program and flock locks kept "
              "only by the mapping; vos cannot restore both",
              a.start, a.name);
        }
        key += fmt::format("\n+locks at {:#x}", a.start);
      }
      if (*own >= 0) {
        map_fds.emplace(key, *own);  // the program's: not among the helpers to close
      }
      auto it = map_fds.find(key);
      if (it == map_fds.end()) {
        int fd = ::open(a.name.c_str(), (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (fd < 0) {
          return sys_error("opening {} to map it at {:#x}", a.name, a.start);
        }
        it = map_fds.emplace(key, fd).first;
        helpers.push_back(fd);
        VOS_TRY(take_mapping_locks(fd, a), "mapping of {} at {:#x}", a.name, a.start);
      }
      b.fd = it->second;
      b.file_offset = a.file_offset;
    }
    // Lazy restore: private anonymous memory is filled on first touch by the keeper (the
    // kernel's missing-page userfaultfd covers anonymous memory only); the rest is read now.
    bool lazy = img.lazy && !a.pages.empty() && a.kind == image::AreaKind::kAnon && !a.shared;
    if (lazy) {
      b.flags |= abi::kAreaLazy;
    }
    b.first_run = runs.size();
    // By address, as the format says (and the eager-page split needs); incremental images
    // written before that was enforced listed inherited runs before the area's own.
    std::vector<image::PageRun> by_address = a.pages;
    std::sort(by_address.begin(), by_address.end(),
              [](const image::PageRun& x, const image::PageRun& y) { return x.vaddr < y.vaddr; });
    for (const auto& r : by_address) {
      BlobPageRun run{r.vaddr, r.npages * kPage, img.pages.base + r.offset, image_fd, 0};
      if (r.image != 0) {
        run.image_offset = img.parents[r.image - 1].pages.base + r.offset;
        run.fd = parent_fds[r.image - 1];
      }
      // Only the pages the kernel writes before the keeper serves any are read now: the run
      // that holds them may be a whole heap merged into the TLS mapping (1 GiB: 0.56-1.9 s).
      if (lazy) {
        split_at_eager_pages(run, eager, runs);
      } else {
        runs.push_back(run);
      }
    }
    if (lazy) {
      add_unstored_eager_pages(a.start, a.end, eager, runs, b.first_run);
    }
    b.nruns = runs.size() - b.first_run;
    areas.push_back(b);
  }
  if (moves.size() > static_cast<size_t>(abi::kMaxMoves)) {
    return user_error("too many vDSO parts");
  }

  std::vector<BlobSiginfo> infos;
  auto add_info = [&](int tid, const image::BlobRef& ref) {
    BlobSiginfo s{};
    s.tid = tid;
    std::memcpy(s.info, img.blobs.data() + ref.offset, std::min<uint64_t>(ref.size, sizeof s.info));
    std::memcpy(&s.sig, s.info, sizeof s.sig);  // si_signo comes first
    infos.push_back(s);
  };
  for (const auto& r : p.shared_pending) {
    add_info(0, r);
  }
  for (const auto& t : p.threads) {
    for (const auto& r : t.pending) {
      add_info(t.tid, r);
    }
  }
  std::string auxv = img.blobs.substr(p.auxv.offset, p.auxv.size);

  PageChecksPlan checks;
  std::vector<uint64_t> sums;  // every check's checksums, back to back
  if (img.restorer_checks_pages()) {
    std::vector<CheckedSource> sources = {
        {image_fd, img.pages.base, img.pages_size, &*img.page_sums}};
    for (size_t i = 0; i < img.parents.size(); ++i) {
      const auto& par = img.parents[i];
      sources.push_back({parent_fds[i], par.pages.base, par.pages_size, &*par.page_sums});
    }
    auto planned = plan_page_checks(sources, areas, runs);
    if (!planned) {
      return std::move(planned).error();
    }
    checks = std::move(*planned);
    for (const auto& src : sources) {
      sums.insert(sums.end(), src.sums->sums.begin(), src.sums->sums.end());
    }
  }

  // Region layout: code | main stack | thread stacks | args | areas | runs | threads | siginfos |
  // auxv | checks | sums | pieces | piece starts | fds to close | the keeper's scratch page
  uint64_t code_size = round_up(code.size() + kBlobSlack, kPage);
  uint64_t stacks = kMainStack + p.threads.size() * abi::kBlobThreadStack;
  uint64_t data_off = code_size + stacks;
  uint64_t areas_off = data_off + round_up(sizeof(RestoreArgs), 64);
  uint64_t runs_off = areas_off + round_up(areas.size() * sizeof(BlobArea), 64);
  uint64_t threads_off = runs_off + round_up(runs.size() * sizeof(BlobPageRun), 64);
  uint64_t infos_off = threads_off + round_up(p.threads.size() * sizeof(BlobThread), 64);
  uint64_t auxv_off = infos_off + round_up(infos.size() * sizeof(BlobSiginfo), 64);
  uint64_t checks_off = auxv_off + round_up(auxv.size(), 64);
  uint64_t sums_off = checks_off + round_up(checks.checks.size() * sizeof(abi::BlobPageCheck), 64);
  uint64_t pieces_off = sums_off + round_up(sums.size() * sizeof(uint64_t), 64);
  uint64_t starts_off =
      pieces_off + round_up(checks.pieces.size() * sizeof(abi::BlobCopyPiece), 64);
  uint64_t close_off = starts_off + round_up(checks.piece_start.size() * sizeof(uint32_t), 64);
  // helpers already holds the mapped files; exe, info, image and log fds are added below.
  uint64_t max_helpers = helpers.size() + 4 + parent_fds.size();
  std::vector<int32_t> removed;
  for (const auto& s : p.sysv_shm) {
    if (s.removed) {
      removed.push_back(s.id);
    }
  }
  uint64_t removed_off = round_up(close_off + max_helpers * sizeof(int32_t), 64);
  uint64_t scratch_off = round_up(removed_off + removed.size() * sizeof(int32_t), kPage);
  uint64_t region_size = scratch_off + kPosixTimerScratch;

  auto region_at = find_gap(used, region_size);
  if (!region_at) {
    return std::move(region_at).error();
  }
  used.push_back({*region_at, *region_at + region_size});
  uint64_t temp_size = 0;
  for (const auto& m : moves) {
    temp_size += m.len;
  }
  auto temp_at = find_gap(used, round_up(temp_size, kPage) + kPage);
  if (!temp_at) {
    return std::move(temp_at).error();
  }
  void* mem =
      ::mmap(reinterpret_cast<void*>(*region_at), region_size, PROT_READ | PROT_WRITE | PROT_EXEC,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (mem == MAP_FAILED) {
    return sys_error("mapping the restorer region at {:#x}", *region_at);
  }
  auto* base = static_cast<char*>(mem);
  uint64_t region = *region_at;
  std::memcpy(base, code.data(), code.size());

  auto* args = reinterpret_cast<RestoreArgs*>(base + data_off);
  std::memset(args, 0, sizeof *args);
  args->magic = abi::kRestoreArgsMagic;
  args->region_start = region;
  args->region_end = region + region_size;
  args->task_size = kTaskSize;
  std::vector<Range> keep = {{region, region + region_size}};
  args->helper_tid_floor = tree != nullptr ? tree->max_id : 0;
  if (tree != nullptr && tree->staging_end > tree->staging_start) {
    keep.push_back({tree->staging_start, tree->staging_end});
    args->staging_start = tree->staging_start;
    args->staging_end = tree->staging_end;
  }
  for (const auto& [name, r] : self.parts) {
    keep.push_back(r);
  }
  std::sort(keep.begin(), keep.end(),
            [](const Range& a, const Range& b) { return a.start < b.start; });
  args->nkeep = static_cast<int32_t>(keep.size());
  for (size_t i = 0; i < keep.size(); ++i) {
    args->keep[i] = {keep[i].start, keep[i].end};
  }
  args->nmoves = static_cast<int32_t>(moves.size());
  std::copy(moves.begin(), moves.end(), args->moves);
  args->move_temp = *temp_at;
  args->log_fd = log_fd;
  args->lazy_fd = -1;
  if (img.lazy) {
    // A number no program fd uses, held until the blob puts the userfaultfd there; the keeper
    // takes it from there and closes it in the program.
    args->lazy_fd = ::fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
    if (args->lazy_fd < 0) {
      return sys_error("reserving an fd for lazy restore");
    }
  }
  if (&__rseq_size != nullptr && __rseq_size != 0) {
    args->rseq_unreg_addr =
        reinterpret_cast<uint64_t>(static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset);
    args->rseq_unreg_len = __rseq_size < 32 ? 32 : __rseq_size;
    args->rseq_unreg_sig = kRseqSig;
  }
  std::memcpy(base + areas_off, areas.data(), areas.size() * sizeof(BlobArea));
  std::memcpy(base + runs_off, runs.data(), runs.size() * sizeof(BlobPageRun));
  std::memcpy(base + infos_off, infos.data(), infos.size() * sizeof(BlobSiginfo));
  std::memcpy(base + auxv_off, auxv.data(), auxv.size());
  args->areas = region + areas_off;
  args->nareas = areas.size();
  args->runs = region + runs_off;
  args->nruns = runs.size();
  args->siginfos = region + infos_off;
  args->nsiginfos = infos.size();
  uint64_t sums_at = region + sums_off;
  for (auto& c : checks.checks) {
    c.sums = sums_at;
    sums_at += c.nchunks * sizeof(uint64_t);
  }
  std::memcpy(base + checks_off, checks.checks.data(),
              checks.checks.size() * sizeof(abi::BlobPageCheck));
  std::memcpy(base + sums_off, sums.data(), sums.size() * sizeof(uint64_t));
  std::memcpy(base + pieces_off, checks.pieces.data(),
              checks.pieces.size() * sizeof(abi::BlobCopyPiece));
  std::memcpy(base + starts_off, checks.piece_start.data(),
              checks.piece_start.size() * sizeof(uint32_t));
  args->checks = region + checks_off;
  args->nchecks = checks.checks.size();
  args->pieces = region + pieces_off;
  args->piece_start = region + starts_off;
  args->nchunks = checks.nchunks;
  args->hash_avx2 = xxh3_uses_avx2() ? 1 : 0;
  auto* threads = reinterpret_cast<BlobThread*>(base + threads_off);
  for (size_t i = 0; i < p.threads.size(); ++i) {
    const auto& t = p.threads[i];
    BlobThread b{};
    b.tid = t.tid;
    b.altstack_sp = t.altstack.sp;
    b.altstack_flags = t.altstack.flags;
    b.altstack_size = t.altstack.size;
    b.rseq_addr = t.rseq_addr;
    b.rseq_len = t.rseq_len;
    b.rseq_sig = t.rseq_sig;
    b.robust_head = t.robust_list;
    b.robust_len = t.robust_list_len;
    b.clear_child_tid = t.clear_child_tid;
    b.stack_top = region + code_size + kMainStack + (i + 1) * abi::kBlobThreadStack;
    std::strncpy(b.comm, t.comm.c_str(), sizeof b.comm - 1);
    threads[i] = b;
  }
  args->threads = region + threads_off;
  args->nthreads = p.threads.size();
  for (int sig = 1; sig <= 64; ++sig) {
    args->actions[sig] = {sig == 9 || sig == 19 ? ~0ull : 0, 0, 0, 0};  // default unless saved
  }
  for (const auto& a : p.actions) {
    if (a.sig >= 1 && a.sig <= 64) {
      args->actions[a.sig] = {a.handler, a.flags, a.restorer, a.mask};
    }
  }
  for (const auto& it : p.itimers) {
    if (it.which >= 0 && it.which < 3) {
      // Value 0 with an interval: expired, waiting for its pending signal to be taken, after
      // which the kernel would have re-armed it one interval on.
      int64_t value_us = it.value_us != 0 ? it.value_us : it.interval_us;
      args->has_itimer[it.which] = 1;
      args->itimers[it.which] = {it.interval_us / 1000000, it.interval_us % 1000000,
                                 value_us / 1000000, value_us % 1000000};
    }
  }
  auto own_exe = p.exe.empty() ? Result<int>(-1) : locked.fd_for(p.exe, false);
  if (!own_exe) {
    return std::move(own_exe).error().context("the program's executable");
  }
  int exe_fd = *own_exe;
  if (exe_fd < 0) {
    exe_fd = p.exe.empty() ? -1 : ::open(p.exe.c_str(), O_RDONLY | O_CLOEXEC);
    if (exe_fd >= 0) {
      helpers.push_back(exe_fd);
    }
  }
  helpers.push_back(info_fd);
  helpers.push_back(image_fd);
  helpers.insert(helpers.end(), parent_fds.begin(), parent_fds.end());
  helpers.push_back(log_fd);  // last: failures are reported until the very end
  std::memcpy(base + close_off, helpers.data(), helpers.size() * sizeof(int32_t));
  args->close_fds = region + close_off;
  args->nclose = helpers.size();
  std::memcpy(base + removed_off, removed.data(), removed.size() * sizeof(int32_t));
  args->shm_removed = region + removed_off;
  args->nshm_removed = removed.size();
  args->has_mm_map = 1;
  args->mm_map = {p.start_code,
                  p.end_code,
                  p.start_data,
                  p.end_data,
                  p.start_brk,
                  p.brk,
                  p.start_stack,
                  p.arg_start,
                  p.arg_end,
                  p.env_start,
                  p.env_end,
                  region + auxv_off,
                  static_cast<uint32_t>(auxv.size()),
                  static_cast<uint32_t>(exe_fd)};

  RegionInfo info{::getpid(), region, region + region_size, args->lazy_fd, region + scratch_off};
  if (::write(info_fd, &info, sizeof info) != sizeof info) {
    return sys_error("telling the keeper where the restorer is");
  }
  uint64_t stack_top = region + code_size + kMainStack - 64;
  uint64_t entry = region;
  // `entry` in a named register: the compiler may otherwise pick rbp for it, which is cleared
  // on the way.
  __asm__ volatile(
      "mov %0, %%rsp\n\t"
      "xor %%ebp, %%ebp\n\t"
      "jmp *%1\n\t"
      :
      : "r"(stack_top), "a"(entry), "D"(args)
      : "memory");
  __builtin_unreachable();
}

[[noreturn]] void die(int log_fd, const Error& e) {
  std::string msg = e.describe() + "\n";
  (void)!::write(log_fd, msg.data(), msg.size());
  ::_exit(70);
}

}  // namespace

void become_program(const LoadedImage& img, int sync_fd, int info_fd, int log_fd) {
  char go = 0;
  if (::read(sync_fd, &go, 1) != 1) {
    ::_exit(70);  // the keeper is gone
  }
  become_this_process(img, info_fd, log_fd, {sync_fd}, nullptr, false);
}

void become_this_process(const LoadedImage& img, int info_fd, int log_fd, std::vector<int> helpers,
                         TreeShared* tree, bool tree_member) {
  // The blob reads pages from here: the image, or the memfd of decompressed pages.
  int image_fd = img.pages.fd;
  if (image_fd < 0) {
    die(log_fd, user_error("restore: page source not opened"));
  }
  std::vector<int*> keep = {&info_fd, &log_fd, &image_fd};
  for (int& fd : helpers) {
    keep.push_back(&fd);
  }
  std::vector<int> parent_fds;
  for (const auto& p : img.parents) {
    parent_fds.push_back(p.pages.fd);
  }
  for (int& fd : parent_fds) {
    keep.push_back(&fd);
  }
  auto s = restore_fds(img, keep, tree);
  if (!s) {
    die(log_fd, s.error());
  }
  // With every fd in place (restore_fds closes descriptors of its own on the way, which would
  // release POSIX locks taken before); from here on nothing closes a descriptor of a POSIX-locked
  // file.
  s = take_file_locks(img.proc);
  if (!s) {
    die(log_fd, s.error().context("file locks"));
  }
  s = restore_terminal_modes(img);
  if (!s) {
    die(log_fd, s.error());
  }
  s = restore_attributes(img.proc);
  if (!s) {
    die(log_fd, s.error());
  }
  s = restore_terminal_foreground(img.proc);
  if (!s) {
    die(log_fd, s.error());
  }
  s = take_console(img.proc.console, img.policy.console_path);
  if (!s) {
    die(log_fd, s.error());
  }
  set_console_foreground(img.proc.console, img.policy.console_path);
  // After the program's resource limits (SHM_LOCK counts against RLIMIT_MEMLOCK), before the
  // blob replaces this address space (the contents go in through an attachment of this one).
  // A tree's segments are made by its first process, before the others exist.
  if (tree == nullptr) {
    s = recreate_sysv_shm(img, image_fd, parent_fds);
    if (!s) {
      die(log_fd, s.error());
    }
    s = recreate_sysv_sem_msg(img.proc);
    if (!s) {
      die(log_fd, s.error());
    }
  }
  (void)tree_member;
  s = build_and_jump(img, image_fd, parent_fds, info_fd, log_fd, helpers, tree);
  die(log_fd, s.error());
}

}  // namespace vos::restore
