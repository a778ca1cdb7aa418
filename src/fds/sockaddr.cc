// Host side.
#include "fds/sockaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace vos::fds {

std::string format_sockaddr(const sockaddr_storage& ss, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(in6->sin6_port));
  }
  if (ss.ss_family != AF_UNIX || len <= offsetof(sockaddr_un, sun_path)) {
    return "";
  }
  const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
  size_t path_len = len - offsetof(sockaddr_un, sun_path);
  if (un->sun_path[0] == '\0') {
    return "@" + std::string(un->sun_path + 1, path_len - 1);
  }
  return std::string(un->sun_path, strnlen(un->sun_path, path_len));
}

Result<ParsedSockaddr> parse_sockaddr(const std::string& s) {
  ParsedSockaddr out;
  if (!s.empty() && (s[0] == '/' || s[0] == '@')) {
    auto* un = reinterpret_cast<sockaddr_un*>(&out.ss);
    un->sun_family = AF_UNIX;
    if (s.size() >= sizeof un->sun_path) {
      return user_error("unix socket path too long: {}", s);
    }
    std::memcpy(un->sun_path, s.data(), s.size());
    if (s[0] == '@') {
      un->sun_path[0] = '\0';
    }
    out.family = AF_UNIX;
    out.len =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + s.size() + (s[0] == '/' ? 1 : 0));
    return out;
  }
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    return user_error("bad socket address {}", s);
  }
  std::string host = s.substr(0, colon);
  int port = std::atoi(s.c_str() + colon + 1);
  if (!host.empty() && host.front() == '[') {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr) != 1) {
      return user_error("bad socket address {}", s);
    }
    out.family = AF_INET6;
    out.len = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&out.ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) {
      return user_error("bad socket address {}", s);
    }
    out.family = AF_INET;
    out.len = sizeof(sockaddr_in);
  }
  return out;
}

}  // namespace vos::fds
