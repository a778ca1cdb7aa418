// Host side (CLI run by root). Acting for another user: root restores a user's image, or takes
// over a user's program whose keeper died, as that user, so that the program runs with its own
// credentials and is registered where that user's vos looks for it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"

namespace vos::keeper {

struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// The ids a live process runs as (from the host's /proc).
Result<UserIds> ids_of(pid_t pid);
// Drops the caller's root privileges for good and points the run directory at the user's own
// ($XDG_RUNTIME_DIR as their login would have it, else /tmp/vos-UID).
Status become_user(const UserIds& ids);

}  // namespace vos::keeper
