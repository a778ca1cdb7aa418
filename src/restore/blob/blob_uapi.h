// Restorer last stage (no libc): the kernel ABI constants the blob uses, as plain numbers (the
// blob includes no system headers).
#pragma once

#include <stdint.h>

namespace vos::blob {

constexpr long kProtRead = 1, kProtWrite = 2;
constexpr long kMapShared = 0x01, kMapPrivate = 0x02, kMapFixed = 0x10, kMapAnonymous = 0x20,
               kMapGrowsdown = 0x0100;
constexpr long kMremapMaymove = 1, kMremapFixed = 2;
constexpr long kMadvPopulateWrite = 23;
constexpr long kShmRdonly = 010000, kShmRemap = 040000, kIpcRmid = 0;
// madvise() hints restored per area, in image::AreaAdvice bit order.
constexpr long kAdviceCalls[] = {14 /*HUGEPAGE*/, 15 /*NOHUGEPAGE*/, 10 /*DONTFORK*/,
                                 16 /*DONTDUMP*/, 18 /*WIPEONFORK*/, 12 /*MERGEABLE*/};
constexpr long kPrSetMm = 35, kPrSetMmMap = 14, kPrSetName = 15;
constexpr long kRseqFlagUnregister = 1;
// userfaultfd (linux/userfaultfd.h): API handshake and MISSING-mode registration.
constexpr long kUffdioApi = 0xc018aa3f, kUffdioRegister = 0xc020aa00,
               kUffdioUnregister = 0x8010aa01, kUffdioCopy = 0xc028aa03,
               kUffdioZeropage = 0xc020aa04;
constexpr uint64_t kUffdApi = 0xaa, kUffdRegisterModeMissing = 1;
constexpr long kUffdUserModeOnly = 1;
// The keeper must hear of the program discarding (MADV_DONTNEED, munmap) or moving (mremap)
// memory it has not filled yet, or it would fill it later with the image's old data; and of it
// forking, or the child's untouched pages would read as zeros (EVENT_FORK needs CAP_SYS_PTRACE:
// vos restore --lazy refuses without it).
constexpr uint64_t kUffdLazyFeatures = (1u << 1) /*EVENT_FORK*/ | (1u << 2) /*EVENT_REMAP*/ |
                                       (1u << 3) /*EVENT_REMOVE*/ | (1u << 6) /*EVENT_UNMAP*/;
constexpr long kOCloexec = 02000000, kONonblock = 04000;
constexpr long kThreadCloneFlags = 0x00000100 /*VM*/ | 0x00000200 /*FS*/ | 0x00000400 /*FILES*/ |
                                   0x00000800 /*SIGHAND*/ | 0x00010000 /*THREAD*/ |
                                   0x00040000 /*SYSVSEM*/;

}  // namespace vos::blob
