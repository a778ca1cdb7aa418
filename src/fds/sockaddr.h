// Host side. Socket addresses as the image writes them: "127.0.0.1:8080", "[::1]:80",
// "@abstract", "/path".
#pragma once

#include <sys/socket.h>

#include <string>

#include "base/result.h"

namespace vos::fds {

std::string format_sockaddr(const sockaddr_storage& ss, socklen_t len);

struct ParsedSockaddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = 0;
};
Result<ParsedSockaddr> parse_sockaddr(const std::string& s);

}  // namespace vos::fds
