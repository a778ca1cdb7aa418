// Host side (keeper).
#include "capture/page_writer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <thread>
#include <vector>

#include "capture/sysv_shm_capture.h"

namespace vos::capture {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmSwapped = 1ull << 62;
constexpr uint64_t kPmFile = 1ull << 61;  // file page or shared anonymous
constexpr size_t kCopyChunk = 4 << 20;

bool all_zero(const char* p) {
  static const char zero[kPage] = {};
  return std::memcmp(p, zero, kPage) == 0;
}

// The pages of [start, end) that must be stored, from /proc/PID/pagemap: the process's own
// (anonymous) pages, present or swapped; every page when `all` (shared memory may hold pages
// this process never faulted in).
Result<PageRanges> pages_to_store(int pagemap_fd, uint64_t start, uint64_t end, bool all) {
  PageRanges out;
  if (all) {
    append_range(out, start, end);
    return out;
  }
  uint64_t npages = (end - start) / kPage;
  std::vector<uint64_t> entries(std::min<uint64_t>(npages, 65536));
  for (uint64_t done = 0; done < npages;) {
    uint64_t n = std::min<uint64_t>(entries.size(), npages - done);
    off_t off = static_cast<off_t>((start / kPage + done) * 8);
    ssize_t got = ::pread(pagemap_fd, entries.data(), n * 8, off);
    if (got != static_cast<ssize_t>(n * 8)) {
      return sys_error("reading pagemap for {:#x}", start + done * kPage);
    }
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t e = entries[i];
      // A private mapping's own pages are anonymous; its unmodified file pages come back from
      // the file.
      if ((e & kPmSwapped) || ((e & kPmPresent) && !(e & kPmFile))) {
        uint64_t at = start + (done + i) * kPage;
        append_range(out, at, at + kPage);
      }
    }
    done += n;
  }
  return out;
}

// Records that the `npages` pages at `vaddr` were stored at sink offset `off`.
void add_run(image::MemoryArea& a, uint64_t vaddr, uint64_t npages, uint64_t off) {
  if (!a.pages.empty()) {
    auto& last = a.pages.back();
    if (last.image == 0 && last.vaddr + last.npages * kPage == vaddr &&
        last.offset + last.npages * kPage == off) {
      last.npages += npages;
      return;
    }
  }
  a.pages.push_back({vaddr, npages, off, 0});
}

// Reads the pieces of `batch` (addresses in `pid`) into `buf`, back to back, with as few system
// calls as possible: written pages are scattered, and one read per page would cost more than the
// copying itself. process_vm_readv honours page protection, so memory the program cannot read
// itself (PROT_NONE) is read through /proc/PID/mem (`mem_fd`) instead.
Status read_batch(pid_t pid, int mem_fd, bool readable, std::vector<iovec>& batch, char* buf,
                  size_t total) {
  if (!readable) {
    size_t at = 0;
    for (const auto& piece : batch) {
      CaptureContext reader;
      reader.pid = pid;
      reader.mem_fd = mem_fd;
      VOS_TRY(
          read_memory(reader, reinterpret_cast<uint64_t>(piece.iov_base), buf + at, piece.iov_len),
          "protected memory");
      at += piece.iov_len;
    }
    return {};
  }
  size_t done = 0;
  size_t first = 0;
  while (done < total) {
    size_t count = std::min<size_t>(batch.size() - first, IOV_MAX);
    iovec local{buf + done, total - done};
    ssize_t n = ::process_vm_readv(pid, &local, 1, batch.data() + first, count, 0);
    if (n <= 0) {
      return Error(n == 0 ? EIO : errno,
                   fmt::format("reading memory of process {} at {}", pid, batch[first].iov_base));
    }
    done += static_cast<size_t>(n);
    // Skip the pieces read in full; a partial one continues where it stopped.
    size_t consumed = static_cast<size_t>(n);
    while (consumed > 0 && first < batch.size()) {
      if (consumed >= batch[first].iov_len) {
        consumed -= batch[first].iov_len;
        ++first;
      } else {
        batch[first].iov_base = static_cast<char*>(batch[first].iov_base) + consumed;
        batch[first].iov_len -= consumed;
        consumed = 0;
      }
    }
  }
  return {};
}

// read_batch on two cores when the batch has many pieces: scattered written pages cost ~1.5 us
// each to read (most of it looking the page up), and the program waits for them.
Status read_batch_split(pid_t pid, int mem_fd, bool readable, std::vector<iovec>& batch, char* buf,
                        size_t total) {
  constexpr size_t kSplitPieces = 256;
  if (batch.size() < kSplitPieces || !readable) {
    return read_batch(pid, mem_fd, readable, batch, buf, total);
  }
  size_t half = batch.size() / 2;
  size_t first_bytes = 0;
  for (size_t i = 0; i < half; ++i) {
    first_bytes += batch[i].iov_len;
  }
  std::vector<iovec> second(batch.begin() + static_cast<std::ptrdiff_t>(half), batch.end());
  batch.resize(half);
  Status other;
  std::thread helper([&] {
    other = read_batch(pid, mem_fd, readable, second, buf + first_bytes, total - first_bytes);
  });
  Status mine = read_batch(pid, mem_fd, readable, batch, buf, first_bytes);
  helper.join();
  VOS_TRY(std::move(mine), "first half");
  return other;
}

// Stores the pages read into `buf` for `pieces` (address, length); all-zero pages are dropped
// when `drop_zero` (they come back as zeros by themselves), and so are pages equal to their copy
// in ctx.reference (the image refers to that copy instead).
Status store_batch(CaptureContext& ctx, image::MemoryArea& a, const std::vector<PageRange>& pieces,
                   const char* buf, PageSink& sink, bool drop_zero) {
  auto not_stored = [&](uint64_t vaddr, const char* page) {
    return (drop_zero && all_zero(page)) ||
           (ctx.reference != nullptr && ctx.reference->keep_if_same(vaddr, page));
  };
  size_t at = 0;
  for (const auto& piece : pieces) {
    uint64_t n = (piece.end - piece.start) / kPage;
    const char* data = buf + at;
    uint64_t run = 0;  // pages to store, ending before page k
    for (uint64_t k = 0; k <= n; ++k) {
      if (k < n && !not_stored(piece.start + k * kPage, data + k * kPage)) {
        ++run;
        continue;
      }
      if (run > 0) {
        uint64_t first = k - run;
        uint64_t off = sink.position();
        VOS_TRY(sink.write(data + first * kPage, run * kPage), "writing pages");
        add_run(a, piece.start + first * kPage, run, off);
        ctx.img.pages_stored += run;
        run = 0;
      }
    }
    at += piece.end - piece.start;
  }
  return {};
}

// How errors name a mapping: its file, or its address when it has none.
std::string area_label(const image::MemoryArea& a) {
  return a.name.empty() ? fmt::format("at {:#x}", a.start) : a.name;
}

// Copies `ranges` of the area from process `source` into `sink`, in batches of up to
// kCopyChunk bytes.
Status store_ranges(CaptureContext& ctx, image::MemoryArea& a, const PageRanges& ranges,
                    pid_t source, int mem_fd, PageSink& sink, bool drop_zero, FrozenBuffer& buf) {
  std::vector<iovec> batch;
  std::vector<PageRange> pieces;
  size_t total = 0;
  auto flush = [&]() -> Status {
    if (total == 0) {
      return {};
    }
    // Straight into the sink's memory when it has some: one copy instead of two.
    char* into = sink.direct(total);
    if (into == nullptr) {
      into = buf.data();
    }
    VOS_TRY(read_batch_split(source, mem_fd, (a.prot & PROT_READ) != 0, batch, into, total),
            "mapping {}", area_label(a));
    VOS_TRY(store_batch(ctx, a, pieces, into, sink, drop_zero), "mapping {}", area_label(a));
    batch.clear();
    pieces.clear();
    total = 0;
    return {};
  };
  for (const auto& r : ranges) {
    for (uint64_t addr = r.start; addr < r.end;) {
      size_t len = std::min<uint64_t>(kCopyChunk - total, r.end - addr);
      batch.push_back({reinterpret_cast<void*>(addr), len});
      pieces.push_back({addr, addr + len});
      total += len;
      addr += len;
      if (total == kCopyChunk) {
        if (auto st = flush(); !st) {
          return st;
        }
      }
    }
  }
  return flush();
}

}  // namespace

FrozenBuffer::~FrozenBuffer() {
  if (data_ != nullptr) {
    ::munmap(data_, size_);
  }
}

Status FrozenBuffer::reserve(size_t bytes) {
  if (bytes <= size_) {
    return {};
  }
  bytes = (bytes + kPage - 1) / kPage * kPage;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return sys_error("allocating {} bytes", bytes);
  }
  if (::madvise(p, bytes, MADV_POPULATE_WRITE) != 0) {
    std::memset(p, 0, bytes);  // kernels before 5.14
  }
  if (data_ != nullptr) {
    ::munmap(data_, size_);
  }
  data_ = static_cast<char*>(p);
  size_ = bytes;
  return {};
}

char* MemorySink::direct(size_t size) {
  return size <= buffer_.capacity() - used_ ? buffer_.data() + used_ : nullptr;
}

Status MemorySink::write(const void* data, size_t size) {
  if (size > buffer_.capacity() - used_) {
    return Error(ENOBUFS, fmt::format("{} bytes of pages do not fit the {} byte buffer",
                                      used_ + size, buffer_.capacity()));
  }
  char* to = buffer_.data() + used_;
  if (to != data) {
    std::memmove(to, data, size);  // data may have been read into this very buffer (direct())
  }
  used_ += size;
  return {};
}

Status write_pages(CaptureContext& ctx, PageSink& sink, pid_t source, PagePass pass) {
  std::string pm_path = fmt::format("/proc/{}/pagemap", source);
  UniqueFd pagemap(::open(pm_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) {
    return sys_error("opening {}", pm_path);
  }
  std::string mem_path = fmt::format("/proc/{}/mem", source);
  UniqueFd mem(::open(mem_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) {
    return sys_error("opening {}", mem_path);
  }
  // Reused: a fresh buffer would be faulted in during every checkpoint's pause.
  static FrozenBuffer buf;
  VOS_TRY(buf.reserve(kCopyChunk), "copy buffer");
  for (size_t idx = 0; idx < ctx.img.areas.size(); ++idx) {
    image::MemoryArea& a = ctx.img.areas[idx];
    const AreaPlan& plan = ctx.area_plans[idx];
    bool mine = true;
    switch (pass) {
      case PagePass::kAll:
        break;
      case PagePass::kFrozenOnly:
      case PagePass::kSnapshotOnly:
        mine = (pass == PagePass::kFrozenOnly) == plan.read_while_frozen;
        break;
      case PagePass::kExplicitOnly:
      case PagePass::kImplicitOnly:
        mine = (pass == PagePass::kExplicitOnly) == plan.explicit_ranges;
        break;
    }
    if (!plan.stores_pages || !mine) {
      continue;
    }
    bool read_all = a.kind == image::AreaKind::kSharedAnon || plan.store_all;
    // Zero pages of anonymous memory come back as zeros by themselves; a zero page of a private
    // file mapping differs from the file and must be kept.
    bool drop_zero = read_all || a.kind == image::AreaKind::kAnon;
    PageRanges ranges;
    if (plan.explicit_ranges) {
      ranges = plan.ranges;
    } else {
      auto want = pages_to_store(pagemap.get(), a.start, a.end, read_all);
      if (!want) {
        return std::move(want).error();
      }
      ranges = std::move(*want);
    }
    // (Callers name the process.)
    if (auto st = store_ranges(ctx, a, ranges, source, mem.get(), sink, drop_zero, buf); !st) {
      return st;
    }
  }
  // System V segments are shared memory: read with the rest of it, while the program is stopped
  // (a snapshot does not freeze them), and always in full (their writes are not tracked).
  if (pass == PagePass::kAll || pass == PagePass::kFrozenOnly || pass == PagePass::kImplicitOnly) {
    return write_sysv_shm_pages(ctx, sink);
  }
  return {};
}

}  // namespace vos::capture
