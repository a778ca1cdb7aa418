// Host side.
#include "base/result.h"

#include <cstring>

namespace vos {

std::string Error::describe() const {
  if (errno_ == 0) {
    return message_;
  }
  return message_ + ": " + std::strerror(errno_);
}

}  // namespace vos
