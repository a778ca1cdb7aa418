// Restorer last stage (no libc): the userfaultfd calls the blob makes, for its lazy areas and for
// loading memory by copy. Each returns the kernel's value (a negative errno on failure).
#pragma once

#include <stdint.h>

#include "restore/blob/blob_uapi.h"
#include "restore/blob/raw_syscall.h"

namespace vos::blob {

// A userfaultfd that has completed the API handshake asking for `features`.
inline long uffd_open(long flags, uint64_t features) {
  long fd = sys1(kUserfaultfd, flags);
  if (fd < 0) {
    return fd;
  }
  struct {
    uint64_t api, features, ioctls;
  } api = {kUffdApi, features, 0};
  long r = sys3(kIoctl, fd, kUffdioApi, reinterpret_cast<long>(&api));
  if (r < 0) {
    sys1(kClose, fd);
    return r;
  }
  return fd;
}

inline long uffd_register_missing(long fd, uint64_t start, uint64_t end) {
  struct {
    uint64_t start, len, mode, ioctls;
  } reg = {start, end - start, kUffdRegisterModeMissing, 0};
  return sys3(kIoctl, fd, kUffdioRegister, reinterpret_cast<long>(&reg));
}

inline long uffd_unregister(long fd, uint64_t start, uint64_t end) {
  struct {
    uint64_t start, len;
  } range = {start, end - start};
  return sys3(kIoctl, fd, kUffdioUnregister, reinterpret_cast<long>(&range));
}

}  // namespace vos::blob
