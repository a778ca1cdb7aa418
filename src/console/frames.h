// Host side. The stream between an attached terminal (vos run, vos restore, vos attach) and the
// keeper's console, after the attach request's JSON reply line: frames of a type byte, a 4-byte
// little-endian length and that many bytes.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace vos::console {

enum class Frame : char {
  kInput = 'I',      // terminal -> keeper: keys typed
  kResize = 'W',     // terminal -> keeper: "ROWS COLS"
  kOutput = 'O',     // keeper -> terminal: what the program wrote (or a redraw)
  kEnded = 'E',      // keeper -> terminal: "first" (the first process ended) or "all"
  kTakenOver = 'T',  // keeper -> terminal: another vos attach took the terminal over
};

inline constexpr size_t kFrameHeader = 5;

inline void append_frame(std::string& out, Frame type, std::string_view payload) {
  char head[kFrameHeader];
  head[0] = static_cast<char>(type);
  auto n = static_cast<uint32_t>(payload.size());
  std::memcpy(head + 1, &n, 4);  // x86-64 only (the project's one architecture): little-endian
  out.append(head, kFrameHeader);
  out.append(payload);
}

// Takes one whole frame off the front of `buf`; false if it holds less than one.
inline bool take_frame(std::string& buf, Frame& type, std::string& payload) {
  if (buf.size() < kFrameHeader) {
    return false;
  }
  uint32_t n = 0;
  std::memcpy(&n, buf.data() + 1, 4);
  if (buf.size() < kFrameHeader + n) {
    return false;
  }
  type = static_cast<Frame>(buf[0]);
  payload.assign(buf, kFrameHeader, n);
  buf.erase(0, kFrameHeader + n);
  return true;
}

// Writes all of `s` to `fd`, blocking or not, waiting for room up to `timeout_ms` at a time
// (-1: as long as it takes). False once the other side is gone or does not take it in time.
inline bool write_fully(int fd, std::string_view s, int timeout_ms) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) {
        return false;
      }
      continue;
    }
    if (n <= 0) {
      return false;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace vos::console
