// Host side (the new process, before the blob). Recreates the program's file descriptors at their
// original numbers.
#pragma once

#include "restore/restore.h"

namespace vos::restore {

// Moves `keep` (fds the restore itself still needs) above every program fd first; updates them.
// `tree`: the objects a process tree shares, made before this process existed; its fds that
// hold one get it (and the tree's descriptors are closed at the end).
Status restore_fds(const LoadedImage& img, std::vector<int*> keep, TreeShared* tree = nullptr);

}  // namespace vos::restore
