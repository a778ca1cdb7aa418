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
inline constexpr int kTimerfdIocSetTicks = 0x40085400;  // _IOW('T', 0, u64)

}  // namespace vos::uapi

namespace vos::uapi {

struct CloneArgs {  // struct clone_args, version with set_tid (CLONE_ARGS_SIZE_VER1)
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size;
};
static_assert(sizeof(CloneArgs) == 80);

}  // namespace vos::uapi
