// Host side. What the kernel's unix socket diagnostics (NETLINK_SOCK_DIAG) tell of one unix
// socket that its descriptor cannot: whether its peer still exists, and how much waits in its
// receive queue. Asked in the caller's network namespace.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "base/result.h"

namespace vos::fds {

struct UnixSocketDiag {
  uint8_t state = 0;          // TCP_ESTABLISHED (1) once connected, TCP_LISTEN, TCP_CLOSE
  uint32_t peer_ino = 0;      // 0: no peer, or one whose last descriptor was closed
  uint32_t queued_bytes = 0;  // bytes waiting in its receive queue (unix_inq_len)
  uint8_t shutdown = 0;       // SHUTDOWN_MASK bits: 1 receive, 2 send
};

Result<UnixSocketDiag> diag_unix_socket(ino_t ino);

}  // namespace vos::fds
