// Host side (CLI). How `vos checkpoint` names images, so that they sort in the order they were
// taken (NAME-YYYYMMDD-HHMMSS-NNN.vos, NNN counting the images of one second), and how
// `vos restore --latest NAME` finds the newest.
#pragma once

#include <string>

#include "base/result.h"

namespace vos::cli {

// A path in `dir` (default: the current directory) for a new image of `name`, taken now.
std::string new_image_path(const std::string& dir, const std::string& name);
// The newest image of `name` in `dir`: the one whose name sorts last (older vos images, named
// without the counter, sort by their time too).
Result<std::string> latest_image(const std::string& dir, const std::string& name);

}  // namespace vos::cli
