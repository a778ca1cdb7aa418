// Host side (keeper). System V shared memory: every segment of the program's IPC namespace
// (attached or not, removed or not) with its attributes and contents, and the program's
// attachments (mappings of kind kSysvShm, planned in memory_capture.cc).
//
// A segment is read once, whatever maps it, through an attachment of the keeper's own
// (SHM_RDONLY; the keeper is in the program's IPC namespace). Only the pages the segment holds
// are read: mincore of that attachment reports them, where a read of every page would allocate
// the untouched ones (a 16 GiB PostgreSQL buffer pool mostly never touched). mincore does not see
// pages swapped out, so a segment with any (the `swap` column of /proc/sysvipc/shm, looked at
// again after mincore) is read in full, its zero pages dropped, like MAP_SHARED anonymous memory.
#include "capture/sysv_shm_capture.h"

#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "capture/page_writer.h"
#include "capture/proc_files.h"
#include "capture/sysv_sem_msg_capture.h"
#include "capture/sysvipc.h"
#include "image/sysv_shm_layout.h"

namespace vos::capture {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kWriteChunk = 4ull << 20;  // per sink write: progress moves, buffers stay small
constexpr uint32_t kShmDest = 01000;          // SHM_DEST: marked with IPC_RMID
constexpr uint32_t kShmLocked = 02000;        // SHM_LOCKED
constexpr int kKcmpSysvSem = 6;               // KCMP_SYSVSEM

uint64_t page_round(uint64_t n) {
  return (n + kPage - 1) / kPage * kPage;
}

bool all_zero(const char* p) {
  static const char zero[kPage] = {};
  return std::memcmp(p, zero, kPage) == 0;
}

// The keeper's own read-only attachment of one segment, detached when done.
class Attachment {
 public:
  static Result<Attachment> attach(int id) {
    void* at = ::shmat(id, nullptr, SHM_RDONLY);
    if (at == reinterpret_cast<void*>(-1)) {
      return sys_error("attaching System V segment {} to read it", id);
    }
    return Attachment(static_cast<char*>(at));
  }
  Attachment(Attachment&& o) noexcept : at_(std::exchange(o.at_, nullptr)) {}
  Attachment& operator=(Attachment&&) = delete;
  ~Attachment() {
    if (at_ != nullptr) {
      ::shmdt(at_);
    }
  }
  char* data() const { return at_; }

 private:
  explicit Attachment(char* at) : at_(at) {}
  char* at_;
};

void add_run(image::SysvShm& s, uint64_t offset, uint64_t npages, uint64_t at) {
  if (!s.pages.empty()) {
    auto& last = s.pages.back();
    if (last.vaddr + last.npages * kPage == offset && last.offset + last.npages * kPage == at) {
      last.npages += npages;
      return;
    }
  }
  s.pages.push_back({offset, npages, at, 0});
}

// Stores the pages of `s` marked in `present` (all of them when empty), zero pages dropped.
Status store_segment(CaptureContext& ctx, image::SysvShm& s, const char* data,
                     const std::vector<unsigned char>& present, PageSink& sink) {
  uint64_t first = 0, run = 0;  // pages [first, first + run) to store next
  auto flush = [&]() -> Status {
    if (run == 0) {
      return {};
    }
    uint64_t at = sink.position();
    VOS_TRY(sink.write(data + first * kPage, run * kPage), "writing its pages");
    add_run(s, first * kPage, run, at);
    ctx.img.pages_stored += run;
    run = 0;
    return {};
  };
  uint64_t npages = page_round(s.size) / kPage;
  for (uint64_t k = 0; k < npages; ++k) {
    if ((!present.empty() && !(present[k] & 1)) || all_zero(data + k * kPage)) {
      VOS_TRY(flush(), "segment offset {:#x}", first * kPage);
      continue;
    }
    if (run == 0) {
      first = k;
    }
    if (++run * kPage == kWriteChunk) {
      VOS_TRY(flush(), "segment offset {:#x}", first * kPage);
    }
  }
  return flush();
}

// Whether the keeper's attachment at `at` is backed by huge pages (SHM_HUGETLB), from its own
// smaps: mincore would not see such a segment's pages, and restoring it needs SHM_HUGETLB.
Result<std::vector<bool>> huge_page_backed(const std::vector<Attachment>& mine) {
  auto flags = read_vm_flags(::getpid());
  if (!flags) {
    return std::move(flags).error();
  }
  std::vector<bool> out;
  for (const auto& a : mine) {
    auto it = flags->find(reinterpret_cast<uint64_t>(a.data()));
    out.push_back(it != flags->end() && it->second.find(" ht ") != std::string::npos);
  }
  return out;
}

}  // namespace

std::vector<Error> check_shm_attachments(const std::vector<MapsEntry>& maps) {
  // One shmat maps the whole segment from its first page; mprotect and munmap may split it.
  // Restore attaches it whole again, at the address of its first page, so that page must be
  // there: a mapping whose part at offset 0 is gone would need memory below it unmapped.
  std::map<std::pair<uint64_t, uint64_t>, const MapsEntry*> lowest;  // (id, base) -> part
  for (const auto& m : maps) {
    if (!is_sysv_shm_mapping(m)) {
      continue;
    }
    auto key = std::make_pair(m.ino, m.start - m.offset);
    auto it = lowest.find(key);
    if (it == lowest.end() || m.offset < it->second->offset) {
      lowest[key] = &m;
    }
  }
  std::vector<Error> out;
  for (const auto& [key, m] : lowest) {
    if (m->offset != 0) {
      out.push_back(user_error(
          "mapping {:#x}-{:#x}: System V segment {} attached at {:#x} with its first pages "
          "unmapped: not supported yet",
          m->start, m->end, key.first, key.second));
    }
  }
  return out;
}

bool is_sysv_shm_mapping(const MapsEntry& m) {
  return m.shared && m.name.rfind("/SYSV", 0) == 0;
}

void precheck_sysv_ipc(const std::vector<MapsEntry>& maps, bool own_namespace,
                       Obstacles& obstacles) {
  if (!own_namespace) {
    // A program started by an older vos shares the host's IPC namespace: its segments cannot be
    // told from everyone else's, nor recreated under their ids.
    for (const auto& m : maps) {
      if (is_sysv_shm_mapping(m)) {
        obstacles.add(
            user_error("mapping {:#x}-{:#x}: System V shared memory of a program in the host's IPC "
                       "namespace (started by an older vos) is not supported",
                       m.start, m.end));
      }
    }
    return;
  }
  for (const auto& e : check_shm_attachments(maps)) {
    obstacles.add(e);
  }
}

Status capture_sysv_shm(CaptureContext& ctx) {
  if (!ctx.own_ipc_namespace) {
    return {};  // (the precheck refused any attachment)
  }
  // Semaphore sets and message queues belong to the namespace too.
  VOS_TRY(capture_sysv_sem_msg(ctx.img), "System V IPC");
  auto list = read_sysvipc_shm();
  if (!list) {
    return std::move(list).error();
  }
  ctx.img.sysv_shm.clear();
  std::sort(list->begin(), list->end(),
            [](const ShmListing& a, const ShmListing& b) { return a.id < b.id; });
  for (const auto& l : *list) {
    image::SysvShm s;
    s.id = l.id;
    s.key = l.key;
    s.size = l.size;
    s.mode = l.mode & 0777;
    s.removed = (l.mode & kShmDest) != 0;
    s.locked = (l.mode & kShmLocked) != 0;
    s.uid = l.uid;
    s.gid = l.gid;
    s.cuid = l.cuid;
    s.cgid = l.cgid;
    s.cpid = l.cpid;
    s.lpid = l.lpid;
    ctx.img.sysv_shm.push_back(std::move(s));
  }
  // SHM_RDONLY is the mapping's missing may-write flag: smaps of before the freeze, read again
  // if an attachment is newer than that.
  std::map<uint64_t, std::string> fresh;
  for (auto& a : ctx.img.areas) {
    if (a.kind != image::AreaKind::kSysvShm) {
      continue;
    }
    const auto& seg = ctx.img.sysv_shm;
    if (std::none_of(seg.begin(), seg.end(),
                     [&](const image::SysvShm& s) { return s.id == a.shm_id; })) {
      return user_error("mapping {:#x}-{:#x}: System V segment {} is not in its IPC namespace",
                        a.start, a.end, a.shm_id);
    }
    auto vm = ctx.vm_flags.find(a.start);
    if (vm == ctx.vm_flags.end()) {
      if (fresh.empty()) {
        auto flags = read_vm_flags(ctx.pid);
        if (!flags) {
          return std::move(flags).error();
        }
        fresh = std::move(*flags);
      }
      vm = fresh.find(a.start);
      if (vm == fresh.end()) {
        return user_error("mapping {:#x}-{:#x}: not in smaps", a.start, a.end);
      }
    }
    a.shm_rdonly = vm->second.find(" mw ") == std::string::npos;
  }
  // What restore will rebuild: refused now rather than by vos restore.
  if (auto layout = image::shm_attachments(ctx.img); !layout) {
    return std::move(layout).error();
  }
  return {};
}

Status write_sysv_shm_pages(CaptureContext& ctx, PageSink& sink) {
  auto& segments = ctx.img.sysv_shm;
  if (segments.empty()) {
    return {};
  }
  std::vector<Attachment> mine;
  for (const auto& s : segments) {
    auto a = Attachment::attach(s.id);
    if (!a) {
      return std::move(a).error();
    }
    mine.push_back(std::move(*a));
  }
  auto huge = huge_page_backed(mine);
  if (!huge) {
    return std::move(huge).error();
  }
  std::vector<std::vector<unsigned char>> present(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    if ((*huge)[i]) {
      return user_error("System V segment {} uses huge pages (SHM_HUGETLB): not supported yet",
                        segments[i].id);
    }
    present[i].resize(page_round(segments[i].size) / kPage);
    if (::mincore(mine[i].data(), page_round(segments[i].size), present[i].data()) != 0) {
      return sys_error("System V segment {}: mincore", segments[i].id);
    }
  }
  // A page swapped out before mincore looked is not reported in memory: such segments are read
  // in full. (The program is stopped, so nothing brings a page back in between.)
  auto after = read_sysvipc_shm();
  if (!after) {
    return std::move(after).error();
  }
  for (const auto& l : *after) {
    for (size_t i = 0; i < segments.size(); ++i) {
      if (segments[i].id == l.id && l.swap > 0) {
        present[i].clear();
      }
    }
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    segments[i].pages.clear();
    VOS_TRY(store_segment(ctx, segments[i], mine[i].data(), present[i], sink),
            "System V segment {}", segments[i].id);
  }
  return {};
}

}  // namespace vos::capture
