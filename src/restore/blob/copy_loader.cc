// Restorer last stage (no libc): see copy_loader.h.
#include "restore/blob/copy_loader.h"

#include "restore/blob/blob_fail.h"
#include "restore/blob/blob_uapi.h"
#include "restore/blob/chunk_hash.h"
#include "restore/blob/raw_syscall.h"
#include "restore/blob/uffd_calls.h"

extern "C" long vos_blob_clone_thread(void* args, unsigned long size, void (*fn)(void*), void* arg);

namespace vos::blob {

using vos::abi::BlobArea;
using vos::abi::BlobCopyPiece;
using vos::abi::BlobPageCheck;
using vos::abi::BlobPageRun;
using vos::abi::BlobThread;
using vos::abi::RestoreArgs;

namespace {

constexpr uint64_t kCopyChunk = 4ull << 20;  // per ioctl: bounded time in the kernel
// Below this a second thread costs more than it saves.
constexpr uint64_t kSplitAbove = 16ull << 20;
constexpr long kFstat = 5, kFutex = 202, kFutexWait = 0;
constexpr long kCloneChildCleartid = 0x00200000;
constexpr int kMaxSources = 16;

// Each image (and parent image) is mapped whole, once per thread: mapping costs address space
// only, and one mapping serves every run of that file.
struct SourceMaps {
  struct Map {
    long fd;
    uint64_t addr, size;
  } maps[kMaxSources];
  int n = 0;

  uint64_t address_of(long fd, uint64_t offset, uint64_t len) {
    for (int i = 0; i < n; ++i) {
      if (maps[i].fd == fd) {
        return checked(maps[i], offset, len);
      }
    }
    if (n == kMaxSources) {
      release();
    }
    struct {
      uint64_t dev, ino, nlink;
      uint32_t mode, uid, gid, pad;
      uint64_t rdev;
      int64_t size;
      int64_t rest[12];
    } st = {};
    long r = sys2(kFstat, fd, reinterpret_cast<long>(&st));
    if (r < 0) {
      fail("fstat image", r, static_cast<unsigned long>(fd));
    }
    auto size = static_cast<uint64_t>(st.size);
    long addr =
        size == 0 ? -22 : sys6(kMmap, 0, static_cast<long>(size), kProtRead, kMapShared, fd, 0);
    if (addr < 0) {
      fail("mapping the image", addr, static_cast<unsigned long>(fd));
    }
    maps[n] = {fd, static_cast<uint64_t>(addr), size};
    return checked(maps[n++], offset, len);
  }

  static uint64_t checked(const Map& m, uint64_t offset, uint64_t len) {
    if (offset > m.size || len > m.size - offset) {
      fail("page run past the end of the image", -5, offset);
    }
    return m.addr + offset;
  }

  void release() {
    for (int i = 0; i < n; ++i) {
      sys2(kMunmap, static_cast<long>(maps[i].addr), static_cast<long>(maps[i].size));
    }
    n = 0;
  }
};

void copy_pages(long uffd, uint64_t dst, uint64_t src, uint64_t len) {
  uint64_t done = 0;
  while (done < len) {
    uint64_t n = len - done < kCopyChunk ? len - done : kCopyChunk;
    struct {
      uint64_t dst, src, len, mode;
      int64_t copy;
    } c = {dst + done, src + done, n, 0, 0};
    long r = sys3(kIoctl, uffd, kUffdioCopy, reinterpret_cast<long>(&c));
    if (c.copy > 0) {
      done += static_cast<uint64_t>(c.copy);
    } else if (r < 0 && r != -11 /*EAGAIN: retry*/) {
      fail("UFFDIO_COPY", r, dst + done);
    }
  }
}

// Copies the bytes [from, to) of the registered areas' runs, counted in area and run order.
void copy_span(const RestoreArgs* a, const CopyLoader& loader, uint64_t from, uint64_t to) {
  const auto* areas = reinterpret_cast<const BlobArea*>(a->areas);
  const auto* runs = reinterpret_cast<const BlobPageRun*>(a->runs);
  SourceMaps sources;
  uint64_t pos = 0;
  for (uint64_t i = 0; i < loader.registered_end && pos < to; ++i) {
    if (!loads_by_copy(areas[i])) {
      continue;
    }
    for (uint64_t k = 0; k < areas[i].nruns && pos < to; ++k) {
      const BlobPageRun& run = runs[areas[i].first_run + k];
      uint64_t begin = from > pos ? from - pos : 0;
      uint64_t end = to - pos < run.len ? to - pos : run.len;
      if (begin < end) {
        uint64_t src = sources.address_of(run.fd, run.image_offset + begin, end - begin);
        copy_pages(loader.uffd, run.vaddr + begin, src, end - begin);
      }
      pos += run.len;
    }
  }
  sources.release();
}

// Checks chunks [from, to) of the page data (numbered across all checked images), and right
// after each, while it is in cache, copies the pieces of registered areas that lie in it.
void check_and_copy_chunks(const RestoreArgs* a, const CopyLoader& loader, uint64_t from,
                           uint64_t to) {
  const auto* checks = reinterpret_cast<const BlobPageCheck*>(a->checks);
  const auto* pieces = reinterpret_cast<const BlobCopyPiece*>(a->pieces);
  const auto* starts = reinterpret_cast<const uint32_t*>(a->piece_start);
  const auto* areas = reinterpret_cast<const BlobArea*>(a->areas);
  SourceMaps sources;
  uint64_t c = 0;
  for (uint64_t g = from; g < to; ++g) {
    while (g >= checks[c].first_chunk + checks[c].nchunks) {
      ++c;
    }
    const BlobPageCheck& check = checks[c];
    uint64_t at = (g - check.first_chunk) * check.chunk_size;
    uint64_t len =
        check.pages_size - at < check.chunk_size ? check.pages_size - at : check.chunk_size;
    uint64_t src = sources.address_of(check.fd, check.pages_offset + at, len);
    const auto* sums = reinterpret_cast<const uint64_t*>(check.sums);
    if (chunk_hash(reinterpret_cast<const void*>(src), len, a->hash_avx2 != 0) !=
        sums[g - check.first_chunk]) {
      fail_corrupt("page data checksum mismatch", check.pages_offset + at);
    }
    for (uint32_t i = starts[g]; i < starts[g + 1]; ++i) {
      const BlobCopyPiece& p = pieces[i];
      if (loads_by_read(a, areas[p.area])) {
        read_pages(p.fd, p.vaddr, p.len, p.image_offset);
      } else if (loader.uffd >= 0 && p.area < loader.registered_end &&
                 loads_by_copy(areas[p.area])) {
        copy_pages(loader.uffd, p.vaddr, sources.address_of(p.fd, p.image_offset, p.len), p.len);
      }
    }
  }
  sources.release();
}

struct LoaderThread {
  const RestoreArgs* args;
  const CopyLoader* loader;
  uint64_t from, to;  // bytes of runs (copy_span) or chunks (check_and_copy_chunks)
  bool by_chunks;
  int running;  // cleared by the kernel when the thread is gone (CLONE_CHILD_CLEARTID)
};

void run_part(const LoaderThread& t) {
  if (t.by_chunks) {
    check_and_copy_chunks(t.args, *t.loader, t.from, t.to);
  } else {
    copy_span(t.args, *t.loader, t.from, t.to);
  }
}

void loader_thread_main(void* arg) {
  auto* t = static_cast<LoaderThread*>(arg);
  run_part(*t);
  sys1(kExit, 0);
  __builtin_unreachable();
}

struct CloneArgs {  // struct clone_args, version 2 (with set_tid)
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

// The loader thread takes a tid no thread of the program will ask for: above all of theirs (of
// the whole tree's, which other processes' loaders may be taking at the same time: a few tries).
// It runs on the first thread's spare stack slot (the main thread runs on the main stack).
bool start_loader_thread(const RestoreArgs* a, LoaderThread* t) {
  const auto* threads = reinterpret_cast<const BlobThread*>(a->threads);
  int64_t tid = sys0(kGetpid);
  tid = a->helper_tid_floor > tid ? a->helper_tid_floor : tid;
  for (uint64_t i = 0; i < a->nthreads; ++i) {
    tid = threads[i].tid > tid ? threads[i].tid : tid;
  }
  t->running = 1;
  for (int attempt = 0; attempt < 64; ++attempt) {
    ++tid;
    CloneArgs ca = {};
    ca.flags = kThreadCloneFlags | kCloneChildCleartid;
    ca.child_tid = reinterpret_cast<uint64_t>(&t->running);
    ca.stack = threads[0].stack_top - vos::abi::kBlobThreadStack;
    ca.stack_size = vos::abi::kBlobThreadStack;
    ca.set_tid = reinterpret_cast<uint64_t>(&tid);
    ca.set_tid_size = 1;
    long r = vos_blob_clone_thread(&ca, sizeof ca, loader_thread_main, t);
    if (r >= 0) {
      return true;
    }
    if (r != -17 /*EEXIST*/) {
      break;
    }
  }
  t->running = 0;
  return false;
}

void wait_loader_thread(LoaderThread* t) {
  while (__atomic_load_n(&t->running, __ATOMIC_ACQUIRE) != 0) {
    sys4(kFutex, reinterpret_cast<long>(&t->running), kFutexWait, 1, 0);
  }
}

}  // namespace

bool loads_by_copy(const BlobArea& ar) {
  return vos::abi::area_loads_by_copy(ar);
}

bool loads_by_read(const RestoreArgs* a, const BlobArea& ar) {
  return a->nchecks > 0 && vos::abi::area_loads_by_read(ar);
}

void read_pages(long fd, uint64_t vaddr, uint64_t len, uint64_t offset) {
  uint64_t done = 0;
  while (done < len) {
    long r = sys4(kPread64, fd, static_cast<long>(vaddr + done), static_cast<long>(len - done),
                  static_cast<long>(offset + done));
    if (r <= 0) {
      fail("reading pages", r == 0 ? -5 : r, vaddr + done);
    }
    done += static_cast<uint64_t>(r);
  }
}

void copy_eager_runs(long uffd, const BlobPageRun* runs, uint64_t nruns) {
  SourceMaps sources;
  for (uint64_t k = 0; k < nruns; ++k) {
    const BlobPageRun& run = runs[k];
    if (!(run.flags & vos::abi::kRunEager)) {
      continue;
    }
    if (run.fd >= 0) {
      copy_pages(uffd, run.vaddr, sources.address_of(run.fd, run.image_offset, run.len), run.len);
      continue;
    }
    struct {
      uint64_t start, len, mode;
      int64_t zeropage;
    } z = {run.vaddr, run.len, 0, 0};
    long r = sys3(kIoctl, uffd, kUffdioZeropage, reinterpret_cast<long>(&z));
    if (r < 0) {
      fail("UFFDIO_ZEROPAGE", r, run.vaddr);
    }
  }
  sources.release();
}

CopyLoader open_copy_loader(const RestoreArgs* a) {
  CopyLoader loader;
  const auto* areas = reinterpret_cast<const BlobArea*>(a->areas);
  bool wanted = false;
  for (uint64_t i = 0; i < a->nareas && !wanted; ++i) {
    wanted = loads_by_copy(areas[i]);
  }
  if (!wanted) {
    return loader;
  }
  // User-mode faults only: the blob never faults on registered memory, and this mode needs no
  // privilege where unprivileged userfaultfd is switched off.
  long fd = uffd_open(kOCloexec | kUffdUserModeOnly, 0);
  if (fd < 0) {
    return loader;
  }
  loader.uffd = fd;
  return loader;
}

bool register_for_copy(CopyLoader& loader, const BlobArea& ar, uint64_t index) {
  if (loader.uffd < 0 || loader.stopped) {
    return false;
  }
  if (!loads_by_copy(ar)) {
    loader.registered_end = index + 1;  // not one of them: the next area may still be
    return false;
  }
  if (uffd_register_missing(loader.uffd, ar.start, ar.end) < 0) {
    loader.stopped = true;  // this and every later area load the usual way
    return false;
  }
  loader.registered_end = index + 1;
  return true;
}

void run_copy_loader(const RestoreArgs* a, CopyLoader& loader) {
  if (loader.uffd < 0 && a->nchecks == 0) {
    return;
  }
  const auto* areas = reinterpret_cast<const BlobArea*>(a->areas);
  const auto* runs = reinterpret_cast<const BlobPageRun*>(a->runs);
  // Work to share between two threads: chunks to check (and copy from), or bytes to copy.
  LoaderThread mine = {a, &loader, 0, 0, a->nchecks > 0, 0};
  uint64_t bytes = 0;
  if (mine.by_chunks) {
    const auto* checks = reinterpret_cast<const BlobPageCheck*>(a->checks);
    for (uint64_t c = 0; c < a->nchecks; ++c) {
      bytes += checks[c].pages_size;
    }
    mine.to = a->nchunks;
  } else {
    for (uint64_t i = 0; i < loader.registered_end; ++i) {
      for (uint64_t k = 0; loads_by_copy(areas[i]) && k < areas[i].nruns; ++k) {
        bytes += runs[areas[i].first_run + k].len;
      }
    }
    mine.to = bytes;
  }
  uint64_t half = mine.by_chunks ? mine.to / 2 : (bytes / 2) & ~uint64_t{4095};
  LoaderThread helper = {a, &loader, half, mine.to, mine.by_chunks, 0};
  if (bytes >= kSplitAbove && start_loader_thread(a, &helper)) {
    mine.to = half;
    run_part(mine);
    wait_loader_thread(&helper);
  } else {
    run_part(mine);
  }
  for (uint64_t i = 0; i < a->nareas; ++i) {
    const BlobArea& ar = areas[i];
    bool copied = loader.uffd >= 0 && i < loader.registered_end && loads_by_copy(ar);
    if (copied) {
      long r = uffd_unregister(loader.uffd, ar.start, ar.end);
      if (r < 0) {
        fail("UFFDIO_UNREGISTER", r, ar.start);
      }
    }
    if ((copied || loads_by_read(a, ar)) && ar.prot != (kProtRead | kProtWrite)) {
      long r = sys3(kMprotect, static_cast<long>(ar.start), static_cast<long>(ar.end - ar.start),
                    static_cast<long>(ar.prot));
      if (r < 0) {
        fail("mprotect", r, ar.start);
      }
    }
  }
  if (loader.uffd < 0) {
    return;
  }
  sys1(kClose, loader.uffd);
  loader.uffd = -1;
}

}  // namespace vos::blob
