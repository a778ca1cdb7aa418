// Host side (keeper). The bytes waiting in a pipe or FIFO, read without taking them from it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/result.h"

namespace vos::fds {

// The unread bytes of fd `fd` of process `pid` (a read end), copied with tee() so the program
// still has them; `capacity` gets the pipe's size (F_GETPIPE_SZ).
Result<std::string> read_pipe_data(pid_t pid, int fd, uint64_t& capacity);

}  // namespace vos::fds
