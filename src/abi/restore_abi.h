// Boundary between the restore front end (C++, libc) and the libc-free last stage (the blob).
// Everything the blob needs is laid out in one memory region that the blob keeps mapped until the
// keeper removes it; pointers in these structs are absolute addresses inside that region.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vos::abi {

inline constexpr uint64_t kRestoreArgsMagic = 0x31535241534f56ull;  // "VOSARS1"
inline constexpr int kMaxKeepRanges = 8;
inline constexpr int kMaxMoves = 4;
inline constexpr uint64_t kBlobThreadStack = 32 * 1024;

enum BlobAreaFlags : uint32_t {
  kAreaMapAnon = 1u << 0,    // MAP_ANONYMOUS; otherwise `fd` is mapped
  kAreaShared = 1u << 1,     // MAP_SHARED
  kAreaGrowsDown = 1u << 2,  // MAP_GROWSDOWN (main stack)
  kAreaLazy = 1u << 3,       // pages not read: registered with the lazy userfaultfd instead
  kAreaHugePages = 1u << 4,  // the kernel may back it with huge pages (restore/huge_pages.h)
  // System V shared memory (restore/sysv_shm_restore.h): shmat of segment `fd` at `start` (the
  // whole segment, [start, end)), SHM_RDONLY with kAreaShmRdonly; the attachment's mappings
  // follow as kAreaShmPart (given their protection and advice only), and what the program had
  // unmapped of it as kAreaHole (munmap).
  kAreaShmAttach = 1u << 5,
  kAreaShmRdonly = 1u << 6,
  kAreaShmPart = 1u << 7,
  kAreaHole = 1u << 8,
  // Shared anonymous memory of a process tree: a new mapping of the object the tree's first
  // process made (mremap with old size 0 of `file_offset`, its address in the staging range),
  // so that every process maps the same pages, as after the fork that shared them.
  kAreaSharedObject = 1u << 9,
};

struct BlobArea {
  uint64_t start;
  uint64_t end;
  uint64_t file_offset;
  uint64_t first_run;  // index into the page-run array
  uint64_t nruns;
  uint32_t prot;
  uint32_t flags;   // BlobAreaFlags
  int32_t fd;       // file to map, or -1
  uint32_t advice;  // image::AreaAdvice bits: madvise() calls to make again
};
static_assert(sizeof(BlobArea) == 56);

struct BlobPageRun {
  uint64_t vaddr;
  uint64_t len;           // bytes
  uint64_t image_offset;  // absolute offset in the image file `fd`
  int32_t fd;             // the image, a parent image of an incremental one, or -1: zeros
  uint32_t flags;         // kRunEager
};
// In a lazy area, copy this run in before the program runs anyway: the kernel writes it (an rseq
// area) before the keeper serves any fault. Only those pages: restore/eager_pages.h splits the
// runs around them, and adds runs without data (fd -1) where the image stores none.
inline constexpr uint32_t kRunEager = 1u << 0;
static_assert(sizeof(BlobPageRun) == 32);

// The pages section of one image file that the blob checks, chunk by chunk, before the program
// runs (and copies the chunk's pages into private anonymous memory while it is in cache).
struct BlobPageCheck {
  int32_t fd;  // the image or a parent image, as in BlobPageRun::fd
  uint32_t pad;
  uint64_t pages_offset;  // absolute file offset of the pages section
  uint64_t pages_size;
  uint64_t chunk_size;
  uint64_t sums;  // uint64_t[nchunks]: XXH3-64 of each chunk
  uint64_t nchunks;
  uint64_t first_chunk;  // number of this check's chunk 0 among the chunks of all checks
};
static_assert(sizeof(BlobPageCheck) == 56);

// Private anonymous memory that is loaded now, and not into huge pages: the restorer fills it
// by UFFDIO_COPY (4 KiB pages only). The front end plans page checks with the same test.
inline bool area_loads_by_copy(const BlobArea& a) {
  return a.nruns > 0 && (a.flags & kAreaMapAnon) && !(a.flags & kAreaShared) &&
         !(a.flags & kAreaLazy) && !(a.flags & kAreaHugePages);
}

// The same memory where huge pages are allowed: when the page data is checked, the restorer
// reads each piece in right after checking its chunk, on two threads, and the kernel allocates
// a huge page where the read first touches one.
inline bool area_loads_by_read(const BlobArea& a) {
  return a.nruns > 0 && (a.flags & kAreaMapAnon) && !(a.flags & kAreaShared) &&
         !(a.flags & kAreaLazy) && (a.flags & kAreaHugePages);
}

// A part of a page run that lies inside one chunk: copied once that chunk is checked.
struct BlobCopyPiece {
  uint64_t vaddr;
  uint64_t len;
  uint64_t image_offset;  // absolute offset in `fd`
  int32_t fd;
  uint32_t area;  // index into the area array
};
static_assert(sizeof(BlobCopyPiece) == 32);

struct BlobThread {
  int32_t tid;
  int32_t altstack_flags;
  uint64_t altstack_sp;
  uint64_t altstack_size;
  uint64_t rseq_addr;
  uint32_t rseq_len;
  uint32_t rseq_sig;
  uint64_t robust_head;
  uint64_t robust_len;
  uint64_t clear_child_tid;
  uint64_t stack_top;  // blob-owned stack the thread starts on (unused for the main thread)
  char comm[16];
};
static_assert(sizeof(BlobThread) == 88);

struct BlobSigaction {  // the kernel's struct sigaction layout on x86_64
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};
static_assert(sizeof(BlobSigaction) == 32);

struct BlobSiginfo {
  int32_t tid;  // 0: queue to the whole process
  int32_t sig;
  uint8_t info[128];
};
static_assert(sizeof(BlobSiginfo) == 136);

struct BlobRange {
  uint64_t start;
  uint64_t end;
};

struct BlobMove {
  uint64_t from;
  uint64_t to;
  uint64_t len;
};

struct BlobItimer {  // struct itimerval
  int64_t interval_sec, interval_usec, value_sec, value_usec;
};

// Same layout as the kernel's struct prctl_mm_map.
struct BlobMmMap {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;  // pointer
  uint32_t auxv_size;
  uint32_t exe_fd;
};
static_assert(sizeof(BlobMmMap) == 104);

struct RestoreArgs {
  uint64_t magic;
  uint64_t region_start;  // the whole blob region: code, these args, arrays, thread stacks
  uint64_t region_end;
  uint64_t task_size;              // end of user address space
  BlobRange keep[kMaxKeepRanges];  // sorted; everything else is unmapped
  int32_t nkeep;
  int32_t nmoves;
  BlobMove moves[kMaxMoves];  // vdso/vvar: current -> temp -> program's address
  uint64_t move_temp;         // base of a free range used as the intermediate step
  // A process tree's shared anonymous memory, made by its first process (kAreaSharedObject):
  // kept through the unmapping, removed once every area is mapped. 0: none.
  uint64_t staging_start;
  uint64_t staging_end;
  // The blob's own helper threads take ids above this and above every id of this process's
  // threads: a process tree's other processes and threads are being made at the same time.
  int64_t helper_tid_floor;
  int32_t log_fd;            // failure messages go here
  int32_t lazy_fd;           // >= 0: create a userfaultfd at this fd number for kAreaLazy areas
  uint64_t close_fds;        // int32_t[nclose]: helper fds closed before the program resumes
  uint64_t nclose;           // (the log fd is last, so failures are reported to the end)
  uint64_t rseq_unreg_addr;  // the front end's own rseq area, unregistered first
  uint32_t rseq_unreg_len;
  uint32_t rseq_unreg_sig;
  uint64_t areas;  // BlobArea[nareas]
  uint64_t nareas;
  uint64_t runs;  // BlobPageRun[nruns]
  uint64_t nruns;
  uint64_t threads;  // BlobThread[nthreads], [0] = main thread
  uint64_t nthreads;
  uint64_t siginfos;  // BlobSiginfo[nsiginfos]
  uint64_t nsiginfos;
  // With nchecks > 0 the blob checks the page data (BlobPageCheck[nchecks]) and loads private
  // anonymous memory chunk by chunk: pieces[piece_start[g] .. piece_start[g + 1]) lie in chunk g
  // (uint32_t piece_start[nchunks + 1], BlobCopyPiece pieces[]). With 0, vos checks it itself.
  uint64_t checks;
  uint64_t nchecks;
  uint64_t pieces;
  uint64_t piece_start;
  uint64_t nchunks;    // of all checks
  uint32_t hash_avx2;  // nonzero: the CPU and kernel run AVX2, for hashing the chunks
  uint32_t pad0;
  // int32_t[nshm_removed]: System V segments marked IPC_RMID again once every area is mapped
  // (with no attachment left, the kernel would destroy them at once).
  uint64_t shm_removed;
  uint64_t nshm_removed;
  BlobSigaction actions[65];  // index = signal number; handler == ~0 means "leave"
  BlobItimer itimers[3];
  int32_t has_itimer[3];
  int32_t has_mm_map;
  BlobMmMap mm_map;
};

// Offsets into the blob image, fixed by the blob's linker script.
extern "C" {
typedef void (*BlobEntry)(const RestoreArgs*);
}

}  // namespace vos::abi
