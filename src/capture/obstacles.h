// Host side (keeper). What stands in the way of a checkpoint, gathered before anything is frozen
// so that `vos checkpoint` names every obstacle at once, not only the first.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace vos::capture {

class Obstacles {
 public:
  void add(const Error& e) { items_.push_back(e.describe()); }
  bool empty() const { return items_.empty(); }
  const std::vector<std::string>& items() const { return items_; }
  // One error naming them all (`who`: the process as the user knows it), or success.
  Status result(const std::string& who) const;

 private:
  std::vector<std::string> items_;
};

}  // namespace vos::capture
