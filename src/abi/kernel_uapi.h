// Kernel interfaces newer than Debian 12's headers (or clashing between glibc and linux/ headers),
// defined in one place. Values are the kernel's uapi ABI and never change.
#pragma once

#include <cstdint>

namespace vos::uapi {

inline constexpr int kPtraceGetRseqConfiguration = 0x420f;

struct PtraceRseqConfiguration {
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};

inline constexpr int kSysEpollPwait2 = 441;
inline constexpr int kMadvCollapse = 25;  // MADV_COLLAPSE (6.1): not in glibc 2.36's <sys/mman.h>
inline constexpr int kTimerfdIocSetTicks = 0x40085400;  // _IOW('T', 0, u64)

}  // namespace vos::uapi

namespace vos::uapi {

struct CloneArgs {  // struct clone_args, version with set_tid (CLONE_ARGS_SIZE_VER1)
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size;
};
static_assert(sizeof(CloneArgs) == 80);

}  // namespace vos::uapi

// Write tracking: userfaultfd asynchronous write-protect (6.7+) and the PAGEMAP_SCAN ioctl of
// /proc/PID/pagemap (6.7+), newer than Debian 12's headers.
namespace vos::uapi {

inline constexpr uint64_t kUffdFeatureWpHugetlbfsShmem = 1ull << 12;
inline constexpr uint64_t kUffdFeatureWpUnpopulated = 1ull << 13;
inline constexpr uint64_t kUffdFeatureWpAsync = 1ull << 15;
inline constexpr int kUffdUserModeOnly = 1;

inline constexpr uint64_t kPageIsWpAllowed = 1ull << 0;
inline constexpr uint64_t kPageIsWritten = 1ull << 1;
inline constexpr uint64_t kPageIsFile = 1ull << 2;
inline constexpr uint64_t kPageIsPresent = 1ull << 3;
inline constexpr uint64_t kPageIsSwapped = 1ull << 4;
inline constexpr uint64_t kPageIsPfnZero = 1ull << 5;

inline constexpr uint64_t kPmScanWpMatching = 1ull << 0;
inline constexpr uint64_t kPmScanCheckWpAsync = 1ull << 1;

struct PageRegion {
  uint64_t start, end, categories;
};

struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
static_assert(sizeof(PmScanArg) == 96);

// _IOWR('f', 16, struct pm_scan_arg)
inline constexpr unsigned long kPagemapScan =
    (3ul << 30) | (sizeof(PmScanArg) << 16) | (static_cast<unsigned long>('f') << 8) | 16;

}  // namespace vos::uapi
