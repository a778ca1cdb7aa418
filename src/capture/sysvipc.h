// Host side (keeper). The System V IPC objects of the caller's IPC namespace, as
// /proc/sysvipc/{shm,sem,msg} list them (the files show the namespace of whoever opens them,
// which for the keeper is its program's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace vos::capture {

// One line of /proc/sysvipc/shm.
struct ShmListing {
  int32_t key = 0;
  int32_t id = 0;
  uint32_t mode = 0;  // permission bits, SHM_DEST (01000) and SHM_LOCKED (02000)
  uint64_t size = 0;
  int32_t cpid = 0, lpid = 0;
  uint64_t nattch = 0;
  uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0;
  uint64_t rss = 0;   // bytes in memory
  uint64_t swap = 0;  // bytes swapped out
};

// One line of /proc/sysvipc/sem or /proc/sysvipc/msg: only what a refusal names.
struct IpcListing {
  int32_t key = 0;
  int32_t id = 0;
};

Result<std::vector<ShmListing>> read_sysvipc_shm();
Result<std::vector<IpcListing>> read_sysvipc_sem();
Result<std::vector<IpcListing>> read_sysvipc_msg();

// The parsers, exposed for unit tests.
Result<std::vector<ShmListing>> parse_sysvipc_shm(const std::string& text);
Result<std::vector<IpcListing>> parse_sysvipc_ids(const std::string& text, const char* what);

}  // namespace vos::capture
