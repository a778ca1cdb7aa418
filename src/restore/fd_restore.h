// Host side (the new process, before the blob). Recreates the program's file descriptors at their
// original numbers.
#pragma once

#include "restore/restore.h"

namespace vos::restore {

// Moves `keep` (fds the restore itself still needs) above every program fd first; updates them.
Status restore_fds(const LoadedImage& img, std::vector<int*> keep);

}  // namespace vos::restore
