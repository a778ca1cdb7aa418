// Host side (CLI).
#include "keeper/as_user.h"

#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "capture/proc_files.h"

namespace vos::keeper {

Result<UserIds> ids_of(pid_t pid) {
  auto text = capture::read_text_file(fmt::format("/proc/{}/status", pid));
  if (!text) {
    return std::move(text).error();
  }
  auto kv = capture::parse_key_values(*text);
  UserIds ids;
  ids.uid = static_cast<uid_t>(std::strtoul(kv.get("Uid").c_str(), nullptr, 10));
  ids.gid = static_cast<gid_t>(std::strtoul(kv.get("Gid").c_str(), nullptr, 10));
  std::istringstream groups(kv.get("Groups"));
  for (gid_t g; groups >> g;) {
    ids.groups.push_back(g);
  }
  return ids;
}

Status become_user(const UserIds& ids) {
  if (::setgroups(ids.groups.size(), ids.groups.data()) != 0) {
    return sys_error("setting the supplementary groups of user {}", ids.uid);
  }
  if (::setresgid(ids.gid, ids.gid, ids.gid) != 0) {
    return sys_error("becoming group {}", ids.gid);
  }
  if (::setresuid(ids.uid, ids.uid, ids.uid) != 0) {
    return sys_error("becoming user {}", ids.uid);
  }
  // Changing ids makes the process undumpable: its /proc files stay root's, and the user could
  // not write its own uid_map, nor ptrace what it starts.
  ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  std::string xdg = fmt::format("/run/user/{}", ids.uid);
  struct stat st {};
  if (::stat(xdg.c_str(), &st) == 0 && st.st_uid == ids.uid) {
    ::setenv("XDG_RUNTIME_DIR", xdg.c_str(), 1);
  } else {
    ::unsetenv("XDG_RUNTIME_DIR");
  }
  ::unsetenv("VOS_RUN_DIR");
  return {};
}

}  // namespace vos::keeper
