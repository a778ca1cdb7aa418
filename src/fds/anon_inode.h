// Host side. The name of an anonymous-inode descriptor ("anon_inode:[eventfd]" -> "eventfd").
#pragma once

#include <string>

#include "fds/fd_kind.h"

namespace vos::fds {

inline std::string anon_inode_name(const FdProbe& f) {
  if (!f.link_starts_with("anon_inode:")) {
    return "";
  }
  std::string n = f.link.substr(sizeof("anon_inode:") - 1);
  if (n.size() >= 2 && n.front() == '[' && n.back() == ']') {
    n = n.substr(1, n.size() - 2);
  }
  return n;
}

}  // namespace vos::fds
