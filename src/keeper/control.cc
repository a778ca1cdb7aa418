// Host side (CLI).
#include "keeper/control.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "base/unique_fd.h"

namespace vos::keeper {

Result<nlohmann::json> send_request(const std::string& socket_path, const nlohmann::json& request,
                                    const std::function<void(const nlohmann::json&)>& on_progress) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) {
    return sys_error("socket");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    return user_error("control socket path too long: {}", socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return sys_error("connecting to the program's keeper at {}", socket_path);
  }
  std::string out = request.dump() + "\n";
  if (::write(s.get(), out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
    return sys_error("sending request");
  }
  ::shutdown(s.get(), SHUT_WR);
  // Every line but the reply, which is the last, is a progress line.
  std::string pending;
  std::string reply;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(s.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    pending.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      reply = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (on_progress && reply.rfind("{\"progress\":", 0) == 0) {
        auto line = nlohmann::json::parse(reply, nullptr, false);
        if (!line.is_discarded()) {
          on_progress(line["progress"]);
        }
      }
    }
  }
  if (!pending.empty()) {
    reply = pending;  // a reply without its newline
  }
  try {
    return nlohmann::json::parse(reply);
  } catch (const nlohmann::json::exception&) {
    return user_error("the keeper gave no valid answer (did the program end?)");
  }
}

}  // namespace vos::keeper
