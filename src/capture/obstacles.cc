// Host side (keeper).
#include "capture/obstacles.h"

namespace vos::capture {

Status Obstacles::result(const std::string& who) const {
  if (items_.empty()) {
    return {};
  }
  if (items_.size() == 1) {
    return user_error("{}: {}", who, items_.front());
  }
  std::string msg = fmt::format("{} cannot be checkpointed yet ({} reasons):", who, items_.size());
  for (const auto& i : items_) {
    msg += "\n  " + i;
  }
  return user_error("{}", msg);
}

}  // namespace vos::capture
