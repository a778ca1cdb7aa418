// Host side (CLI): `vos attach NAME`.
#include <unistd.h>

#include <cstdio>

#include "cli/attach_client.h"
#include "cli/commands.h"
#include "keeper/adopt.h"
#include "keeper/registry.h"

namespace vos::cli {

int cmd_attach(const AttachArgs& a) {
  // A new keeper (one had died) takes the program's terminal over from init, without the screen
  // drawn before (that was the old keeper's).
  bool took_over = false;
  auto entry = keeper::served_entry(a.name, &took_over);
  if (!entry) {
    std::fprintf(stderr, "vos attach: %s\n", entry.error().describe().c_str());
    return 1;
  }
  if (took_over) {
    std::fprintf(stderr, "vos attach: %s: its keeper had died; a new one took over\n",
                 entry->name.c_str());
  }
  if (!::isatty(0) || !::isatty(1)) {
    std::fprintf(stderr, "vos attach: stdin and stdout must be a terminal\n");
    return 2;
  }
  AttachOptions o;
  o.name = entry->name;
  o.socket = keeper::socket_path(*entry);
  o.shared = a.shared;
  auto how = attach_terminal(o);
  if (!how) {
    std::fprintf(stderr, "vos attach: %s\n", how.error().describe().c_str());
    return 1;
  }
  if (*how == AttachEnd::kAllEnded) {
    std::fprintf(stderr, "\r\nvos: %s has ended\n", entry->name.c_str());
    return 0;
  }
  say_detached(entry->name, *how);
  return *how == AttachEnd::kKeeperGone ? 1 : 0;
}

}  // namespace vos::cli
