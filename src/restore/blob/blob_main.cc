// Restorer last stage (no libc, raw syscalls only). Replaces the front end's address space with
// the program's, recreates its threads with their original tids, sets what only a thread can set
// for itself (rseq, robust list, alternate stack, clear-tid address) and parks every thread on an
// int3 so that the keeper can load the saved registers with ptrace and let the program go.
// Shape: a straight list of steps, each returning -errno; one failure path.
#include <stddef.h>
#include <stdint.h>

#include "abi/restore_abi.h"
#include "restore/blob/blob_fail.h"
#include "restore/blob/blob_uapi.h"
#include "restore/blob/copy_loader.h"
#include "restore/blob/raw_syscall.h"
#include "restore/blob/uffd_calls.h"

using vos::abi::BlobArea;
using vos::abi::BlobPageRun;
using vos::abi::BlobSiginfo;
using vos::abi::BlobThread;
using vos::abi::RestoreArgs;
using namespace vos::blob;

extern "C" {
long vos_blob_clone_thread(void* args, unsigned long size, void (*fn)(void*), void* arg);
[[noreturn]] void vos_blob_park(void);
[[noreturn]] void vos_restore_main(const RestoreArgs* args);

// The compiler may emit calls to these even in freestanding code.
__attribute__((visibility("hidden"))) void* memcpy(void* d, const void* s, size_t n) {
  auto* dp = static_cast<unsigned char*>(d);
  const auto* sp = static_cast<const unsigned char*>(s);
  while (n--) {
    *dp++ = *sp++;
  }
  return d;
}
__attribute__((visibility("hidden"))) void* memset(void* d, int c, size_t n) {
  auto* dp = static_cast<unsigned char*>(d);
  while (n--) {
    *dp++ = static_cast<unsigned char>(c);
  }
  return d;
}
__attribute__((visibility("hidden"))) void __stack_chk_fail(void) {
  sys1(kExitGroup, 127);
}
}

namespace {

constexpr int kExitRestoreFailed = 70;

const RestoreArgs* g_args;  // set once by the main thread before any other thread exists

size_t str_len(const char* s) {
  size_t n = 0;
  while (s[n] != 0) {
    ++n;
  }
  return n;
}

void log_str(const char* s) {
  sys3(kWrite, g_args->log_fd, reinterpret_cast<long>(s), str_len(s));
}

void log_num(long v) {
  char buf[24];
  int i = sizeof buf;
  bool neg = v < 0;
  unsigned long u = neg ? static_cast<unsigned long>(-v) : static_cast<unsigned long>(v);
  do {
    buf[--i] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0 && i > 1);
  if (neg) {
    buf[--i] = '-';
  }
  sys3(kWrite, g_args->log_fd, reinterpret_cast<long>(buf + i), sizeof buf - i);
}

void log_hex(unsigned long v) {
  char buf[18];
  int i = sizeof buf;
  do {
    buf[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  buf[--i] = 'x';
  buf[--i] = '0';
  sys3(kWrite, g_args->log_fd, reinterpret_cast<long>(buf + i), sizeof buf - i);
}

// Unmaps everything except the ranges the blob must keep (itself, the vDSO and its data pages).
long unmap_all_but_kept(const RestoreArgs* a) {
  uint64_t cursor = 0x1000;
  for (int i = 0; i <= a->nkeep; ++i) {
    uint64_t next = i < a->nkeep ? a->keep[i].start : a->task_size;
    if (next > cursor) {
      long r = sys2(kMunmap, static_cast<long>(cursor), static_cast<long>(next - cursor));
      if (r < 0) {
        fail("munmap", r, cursor);
      }
    }
    if (i < a->nkeep && a->keep[i].end > cursor) {
      cursor = a->keep[i].end;
    }
  }
  return 0;
}

// Moves the kernel's vDSO/vvar pages to where the program had its own: first all to a free
// range, then to the targets, so a source never lands on top of another one's target.
long move_vdso(const RestoreArgs* a) {
  uint64_t temp = a->move_temp;
  for (int i = 0; i < a->nmoves; ++i) {
    const auto& m = a->moves[i];
    long r = sys5(kMremap, static_cast<long>(m.from), static_cast<long>(m.len),
                  static_cast<long>(m.len), kMremapMaymove | kMremapFixed, static_cast<long>(temp));
    if (r < 0) {
      fail("mremap vdso to temp", r, m.from);
    }
    temp += m.len;
  }
  temp = a->move_temp;
  for (int i = 0; i < a->nmoves; ++i) {
    const auto& m = a->moves[i];
    long r = sys5(kMremap, static_cast<long>(temp), static_cast<long>(m.len),
                  static_cast<long>(m.len), kMremapMaymove | kMremapFixed, static_cast<long>(m.to));
    if (r < 0) {
      fail("mremap vdso", r, m.to);
    }
    temp += m.len;
  }
  return 0;
}

// The userfaultfd through which the keeper fills lazy areas, at the fd number it expects.
void create_lazy_uffd(const RestoreArgs* a) {
  long fd = uffd_open(kOCloexec | kONonblock, kUffdLazyFeatures);
  if (fd < 0) {
    fail("userfaultfd", fd, 0);
  }
  if (fd != a->lazy_fd) {
    long r = sys3(kDup3, fd, a->lazy_fd, kOCloexec);
    if (r < 0) {
      fail("dup3 userfaultfd", r, static_cast<unsigned long>(a->lazy_fd));
    }
    sys1(kClose, fd);
  }
}

void register_lazy(const RestoreArgs* a, uint64_t start, uint64_t end) {
  long r = uffd_register_missing(a->lazy_fd, start, end);
  if (r < 0) {
    fail("UFFDIO_REGISTER", r, start);
  }
}

void set_advice(const BlobArea& ar) {
  for (int bit = 0; bit < 6; ++bit) {
    if (ar.advice & (1u << bit)) {
      long r = sys3(kMadvise, static_cast<long>(ar.start), static_cast<long>(ar.end - ar.start),
                    kAdviceCalls[bit]);
      // KSM may be compiled out; the program would have had the same error from its own call.
      if (r < 0 && kAdviceCalls[bit] != 12) {
        fail("madvise", r, ar.start);
      }
    }
  }
}

// System V shared memory: the segments exist already (the front end made them); attached where
// the program had them, whole, then cut back to the mappings the program had. SHM_REMAP: an
// earlier attachment's range may reach into this one's where the program had unmapped it (and
// nothing else of the program is mapped there yet).
bool map_shm(const BlobArea& ar) {
  long len = static_cast<long>(ar.end - ar.start);
  long r;
  if (ar.flags & vos::abi::kAreaShmAttach) {
    r = sys3(kShmat, ar.fd, static_cast<long>(ar.start),
             kShmRemap | ((ar.flags & vos::abi::kAreaShmRdonly) ? kShmRdonly : 0));
    if (r < 0) {
      fail("shmat", r, ar.start);
    }
    if (static_cast<uint64_t>(r) != ar.start) {
      fail("shmat placed elsewhere", -22, ar.start);
    }
  } else if (ar.flags & vos::abi::kAreaHole) {
    r = sys2(kMunmap, static_cast<long>(ar.start), len);
    if (r < 0) {
      fail("munmap of a part of a System V attachment", r, ar.start);
    }
  } else if (ar.flags & vos::abi::kAreaShmPart) {
    r = sys3(kMprotect, static_cast<long>(ar.start), len, static_cast<long>(ar.prot));
    if (r < 0) {
      fail("mprotect of a System V attachment", r, ar.start);
    }
    set_advice(ar);
  } else {
    return false;
  }
  return true;
}

void mark_shm_removed(const RestoreArgs* a) {
  const auto* ids = reinterpret_cast<const int32_t*>(a->shm_removed);
  for (uint64_t i = 0; i < a->nshm_removed; ++i) {
    long r = sys3(kShmctl, ids[i], kIpcRmid, 0);
    if (r < 0) {
      fail("IPC_RMID of System V segment", r, static_cast<unsigned long>(ids[i]));
    }
  }
}

void map_areas(const RestoreArgs* a) {
  CopyLoader loader = open_copy_loader(a);
  const auto* areas = reinterpret_cast<const BlobArea*>(a->areas);
  const auto* runs = reinterpret_cast<const BlobPageRun*>(a->runs);
  for (uint64_t i = 0; i < a->nareas; ++i) {
    const BlobArea& ar = areas[i];
    if (map_shm(ar)) {
      continue;
    }
    if (ar.flags & vos::abi::kAreaSharedObject) {
      long len = static_cast<long>(ar.end - ar.start);
      long r = sys5(kMremap, static_cast<long>(ar.file_offset), 0, len,
                    kMremapMaymove | kMremapFixed, static_cast<long>(ar.start));
      if (r < 0 || static_cast<uint64_t>(r) != ar.start) {
        fail("mremap of shared memory", r < 0 ? r : -22, ar.start);
      }
      r = sys3(kMprotect, static_cast<long>(ar.start), len, static_cast<long>(ar.prot));
      if (r < 0) {
        fail("mprotect", r, ar.start);
      }
      set_advice(ar);
      continue;
    }
    long len = static_cast<long>(ar.end - ar.start);
    long flags = kMapFixed | ((ar.flags & vos::abi::kAreaShared) ? kMapShared : kMapPrivate);
    if (ar.flags & vos::abi::kAreaMapAnon) {
      flags |= kMapAnonymous;
    }
    if (ar.flags & vos::abi::kAreaGrowsDown) {
      flags |= kMapGrowsdown;
    }
    // Shared file mappings keep their data in the file; map them with their final protection
    // (a read-only fd cannot be mapped shared+writable). Everything else is filled first.
    bool fill = ar.nruns > 0;
    long prot = fill ? (kProtRead | kProtWrite) : static_cast<long>(ar.prot);
    long r =
        sys6(kMmap, static_cast<long>(ar.start), len, prot, flags,
             (ar.flags & vos::abi::kAreaMapAnon) ? -1 : ar.fd, static_cast<long>(ar.file_offset));
    if (r < 0) {
      fail("mmap", r, ar.start);
    }
    if (static_cast<uint64_t>(r) != ar.start) {
      fail("mmap placed elsewhere", -22, ar.start);
    }
    // Before the pages arrive: huge-page advice decides how populating allocates them.
    set_advice(ar);
    if (register_for_copy(loader, ar, i) || loads_by_read(a, ar)) {
      continue;  // filled, and given its protection, by run_copy_loader below
    }
    if (ar.flags & vos::abi::kAreaLazy) {
      // Its eager pages go in through the userfaultfd, 4 KiB each, as the keeper fills the
      // rest: populating one would let the kernel put a huge page over its whole 2 MiB block,
      // the other pages of which would then be present as zeros (the keeper's copies fail
      // EEXIST on them).
      register_lazy(a, ar.start, ar.end);
      copy_eager_runs(a->lazy_fd, runs + ar.first_run, ar.nruns);
    } else {
      for (uint64_t k = 0; k < ar.nruns; ++k) {
        const BlobPageRun& run = runs[ar.first_run + k];
        // Populate the run's pages in one call instead of one fault per 4 KiB page during the
        // copy; a kernel without MADV_POPULATE_WRITE just faults them as before.
        sys3(kMadvise, static_cast<long>(run.vaddr), static_cast<long>(run.len),
             kMadvPopulateWrite);
        read_pages(run.fd, run.vaddr, run.len, run.image_offset);
      }
    }
    if (fill && static_cast<long>(ar.prot) != prot) {
      r = sys3(kMprotect, static_cast<long>(ar.start), len, static_cast<long>(ar.prot));
      if (r < 0) {
        fail("mprotect", r, ar.start);
      }
    }
  }
  run_copy_loader(a, loader);
}

// State that the kernel only lets a thread set for itself.
void set_thread_state(const BlobThread* t) {
  long r;
  if (t->robust_head != 0) {
    r = sys2(kSetRobustList, static_cast<long>(t->robust_head), static_cast<long>(t->robust_len));
    if (r < 0) {
      fail("set_robust_list", r, t->robust_head);
    }
  }
  if (t->rseq_addr != 0) {
    r = sys4(kRseq, static_cast<long>(t->rseq_addr), t->rseq_len, 0, t->rseq_sig);
    if (r < 0) {
      fail("rseq", r, t->rseq_addr);
    }
  }
  if (t->altstack_sp != 0 || t->altstack_flags != 2 /* SS_DISABLE */) {
    struct {
      uint64_t sp;
      int32_t flags;
      int32_t pad;
      uint64_t size;
    } ss = {t->altstack_sp, t->altstack_flags & ~1 /* SS_ONSTACK is not settable */, 0,
            t->altstack_size};
    r = sys2(kSigaltstack, reinterpret_cast<long>(&ss), 0);
    if (r < 0) {
      fail("sigaltstack", r, t->altstack_sp);
    }
  }
  sys1(kSetTidAddress, static_cast<long>(t->clear_child_tid));
  sys2(kPrctl, kPrSetName, reinterpret_cast<long>(t->comm));
}

// Signals that reached the process during the restore are not the program's (a restored zombie's
// SIGCHLD to its parent, which the program had already been sent before the checkpoint): taken
// out, with every signal blocked, before the image's own pending signals are queued.
void drop_stray_signals() {
  uint64_t all = ~0ull;
  struct {
    long sec, nsec;
  } now = {0, 0};
  for (int i = 0; i < 256; ++i) {
    if (sys4(kRtSigtimedwait, reinterpret_cast<long>(&all), 0, reinterpret_cast<long>(&now), 8) <
        0) {
      break;
    }
  }
}

// Signals queued to one thread: the kernel lets only the thread itself queue a signal that
// claims to come from tgkill/kill (si_code SI_TKILL or >= 0), so each thread queues its own.
void queue_own_pending(const RestoreArgs* a, long tid) {
  const auto* infos = reinterpret_cast<const BlobSiginfo*>(a->siginfos);
  long pid = sys0(kGetpid);
  for (uint64_t i = 0; i < a->nsiginfos; ++i) {
    const BlobSiginfo& s = infos[i];
    if (s.tid != tid) {
      continue;
    }
    long r = sys4(kRtTgsigqueueinfo, pid, tid, s.sig, reinterpret_cast<long>(s.info));
    if (r < 0) {
      fail("queueing pending thread signal", r, static_cast<unsigned long>(s.sig));
    }
  }
}

void thread_main(void* arg) {
  const auto* t = static_cast<const BlobThread*>(arg);
  set_thread_state(t);
  queue_own_pending(g_args, t->tid);
  vos_blob_park();
}

struct CloneArgs {  // struct clone_args, version 2 (with set_tid)
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

void create_threads(const RestoreArgs* a) {
  const auto* threads = reinterpret_cast<const BlobThread*>(a->threads);
  for (uint64_t i = 1; i < a->nthreads; ++i) {
    const BlobThread* t = &threads[i];
    int64_t tid = t->tid;
    CloneArgs ca = {};
    ca.flags = kThreadCloneFlags;
    ca.stack = t->stack_top - vos::abi::kBlobThreadStack;
    ca.stack_size = vos::abi::kBlobThreadStack;
    ca.set_tid = reinterpret_cast<uint64_t>(&tid);
    ca.set_tid_size = 1;
    long r = vos_blob_clone_thread(&ca, sizeof ca, thread_main, const_cast<BlobThread*>(t));
    if (r < 0) {
      fail("clone3 thread", r, static_cast<unsigned long>(tid));
    }
  }
}

void restore_signals(const RestoreArgs* a) {
  for (int sig = 1; sig <= 64; ++sig) {
    const auto& act = a->actions[sig];
    if (act.handler == ~0ull) {
      continue;
    }
    long r = sys4(kRtSigaction, sig, reinterpret_cast<long>(&act), 0, 8);
    if (r < 0) {
      fail("rt_sigaction", r, static_cast<unsigned long>(sig));
    }
  }
  for (int w = 0; w < 3; ++w) {
    if (a->has_itimer[w]) {
      long r = sys3(kSetitimer, w, reinterpret_cast<long>(&a->itimers[w]), 0);
      if (r < 0) {
        fail("setitimer", r, static_cast<unsigned long>(w));
      }
    }
  }
}

// Pending signals go back on their queues while every signal is still blocked; the keeper then
// installs the program's masks and they are delivered as they would have been.
void queue_shared_pending(const RestoreArgs* a) {
  const auto* infos = reinterpret_cast<const BlobSiginfo*>(a->siginfos);
  long pid = sys0(kGetpid);
  for (uint64_t i = 0; i < a->nsiginfos; ++i) {
    const BlobSiginfo& s = infos[i];
    if (s.tid != 0) {
      continue;
    }
    long r = sys3(kRtSigqueueinfo, pid, s.sig, reinterpret_cast<long>(s.info));
    if (r < 0) {
      fail("queueing pending process signal", r, static_cast<unsigned long>(s.sig));
    }
  }
}

}  // namespace

namespace vos::blob {

[[noreturn]] void fail(const char* step, long err, unsigned long addr) {
  log_str("restore: ");
  log_str(step);
  log_str(" at ");
  log_hex(addr);
  log_str(" failed: errno ");
  log_num(-err);
  log_str("\n");
  sys1(kExitGroup, kExitRestoreFailed);
  __builtin_unreachable();
}

[[noreturn]] void fail_corrupt(const char* what, unsigned long offset) {
  log_str("corrupt image: ");
  log_str(what);
  log_str(" (at file offset ");
  log_hex(offset);
  log_str(")\n");
  sys1(kExitGroup, kExitRestoreFailed);
  __builtin_unreachable();
}

}  // namespace vos::blob

extern "C" [[noreturn]] void vos_restore_main(const RestoreArgs* a) {
  g_args = a;
  if (a->magic != vos::abi::kRestoreArgsMagic) {
    sys1(kExitGroup, kExitRestoreFailed);
  }
  uint64_t all = ~0ull;
  sys4(kRtSigprocmask, 2 /* SIG_SETMASK */, reinterpret_cast<long>(&all), 0, 8);
  // The front end's libc registered rseq at an address about to disappear.
  if (a->rseq_unreg_addr != 0) {
    long r = sys4(kRseq, static_cast<long>(a->rseq_unreg_addr), a->rseq_unreg_len,
                  kRseqFlagUnregister, a->rseq_unreg_sig);
    if (r < 0) {
      fail("rseq unregister", r, a->rseq_unreg_addr);
    }
  }
  unmap_all_but_kept(a);
  move_vdso(a);
  if (a->lazy_fd >= 0) {
    create_lazy_uffd(a);
  }
  map_areas(a);
  if (a->staging_end > a->staging_start) {
    sys2(kMunmap, static_cast<long>(a->staging_start),
         static_cast<long>(a->staging_end - a->staging_start));
  }
  mark_shm_removed(a);
  if (a->has_mm_map) {
    long r = sys5(kPrctl, kPrSetMm, kPrSetMmMap, reinterpret_cast<long>(&a->mm_map),
                  sizeof a->mm_map, 0);
    if (r < 0) {
      fail("prctl(PR_SET_MM_MAP)", r, a->mm_map.brk);
    }
  }
  restore_signals(a);
  create_threads(a);
  const auto* main_thread = reinterpret_cast<const BlobThread*>(a->threads);
  set_thread_state(main_thread);
  drop_stray_signals();
  queue_shared_pending(a);
  queue_own_pending(a, main_thread->tid);
  const auto* close_fds = reinterpret_cast<const int32_t*>(a->close_fds);
  for (uint64_t i = 0; i < a->nclose; ++i) {
    sys1(kClose, close_fds[i]);
  }
  vos_blob_park();
}
