// Host side (keeper). The keeper's part in rebuilding a process tree (restore/tree_restore.cc):
// it waits until every process exists, seizes them, lets the zombies end, and collects where each
// process laid out its restorer.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/result.h"
#include "restore/restore.h"

namespace vos::keeper {

// The keeper's ends of restore::TreePipes.
struct TreePacing {
  int up = -1;          // read end
  int go_members = -1;  // write ends
  int go_program = -1;
  int die = -1;
};

// `root` is already seized; `info_fd` and `log_fd` are the read ends every process writes its
// RegionInfo and its failure to. Returns one RestoredProcess per living process, in image order.
Result<std::vector<restore::RestoredProcess>> pace_tree_restore(const restore::LoadedImage& img,
                                                                pid_t root, TreePacing& pipes,
                                                                int info_fd, int log_fd);

}  // namespace vos::keeper
