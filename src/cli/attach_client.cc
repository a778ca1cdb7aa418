// Host side (CLI).
#include "cli/attach_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/unique_fd.h"
#include "console/frames.h"
#include "keeper/registry.h"

namespace vos::cli {

namespace {

int g_signal_pipe = -1;

void note_signal(int sig) {
  char c = static_cast<char>(sig);
  (void)!::write(g_signal_pipe, &c, 1);
}

// The caller's terminal in raw mode while attached: every key goes to the program, which has
// its own terminal's mode (echo, Ctrl-C) on the pty.
class RawTerminal {
 public:
  RawTerminal() {
    if (::tcgetattr(0, &saved_) == 0) {
      termios raw = saved_;
      ::cfmakeraw(&raw);
      active_ = ::tcsetattr(0, TCSADRAIN, &raw) == 0;
    }
  }
  ~RawTerminal() {
    if (active_) {
      ::tcsetattr(0, TCSADRAIN, &saved_);
    }
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

// Where the program's screen is shown: stdout, unless it is a file (vos run -- prog > out, whose
// stdout is that file, not the pty), then another of the terminal's descriptors.
int screen_fd() {
  for (int fd : {1, 2, 0}) {
    if (::isatty(fd)) {
      return fd;
    }
  }
  return 1;
}

std::string size_payload() {
  winsize ws{};
  if (::ioctl(screen_fd(), TIOCGWINSZ, &ws) != 0) {
    return "";
  }
  return std::to_string(ws.ws_row) + " " + std::to_string(ws.ws_col);
}

Result<UniqueFd> connect_keeper(const std::string& name, std::string path) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) {
    path = keeper::socket_path(name);
  }
  if (!s.valid() || path.size() >= sizeof addr.sun_path) {
    return sys_error("socket for {}", path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return sys_error("connecting to the keeper of {} ({})", name, path);
  }
  return s;
}

// Whether the last alternate-screen switch in `out` turned it on (vim, less): the shell's screen
// comes back on detach only if it is switched off again.
void track_alt_screen(std::string_view out, bool& alt) {
  // One pass over the output, which is most of what this process reads: only ESC [ ? is looked at.
  const char* p = out.data();
  const char* end = p + out.size();
  while ((p = static_cast<const char*>(::memmem(p, static_cast<size_t>(end - p), "\x1b[?", 3))) !=
         nullptr) {
    p += 3;
    for (std::string_view mode : {"1049", "1047", "47"}) {
      if (static_cast<size_t>(end - p) > mode.size() && std::string_view(p, mode.size()) == mode &&
          (p[mode.size()] == 'h' || p[mode.size()] == 'l')) {
        alt = p[mode.size()] == 'h';
        break;
      }
    }
  }
}

bool g_alt_screen = false;

}  // namespace

Result<AttachEnd> attach_terminal(const AttachOptions& opts) {
  auto conn = connect_keeper(opts.name, opts.socket);
  if (!conn) {
    return std::move(conn).error();
  }
  int rows = 0, cols = 0;
  std::sscanf(size_payload().c_str(), "%d %d", &rows, &cols);
  nlohmann::json req = {{"cmd", "attach"},
                        {"rows", rows},
                        {"cols", cols},
                        {"shared", opts.shared},
                        {"redraw", opts.redraw}};
  std::string line = req.dump() + "\n";
  if (!console::write_fully(conn->get(), line, -1)) {
    return sys_error("asking the keeper of {} to attach", opts.name);
  }
  // The reply line, then frames (which may follow in the same read).
  std::string in;
  char buf[65536];
  while (in.find('\n') == std::string::npos) {
    ssize_t n = ::read(conn->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return user_error("the keeper of {} closed the connection without a reply", opts.name);
    }
    in.append(buf, static_cast<size_t>(n));
  }
  auto nl = in.find('\n');
  nlohmann::json reply = nlohmann::json::parse(in.substr(0, nl), nullptr, false);
  in.erase(0, nl + 1);
  if (!reply.is_object() || !reply.value("ok", false)) {
    return user_error("{}", reply.is_object() ? reply.value("error", "refused") : "bad reply");
  }

  int sig_pipe[2];
  if (::pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return sys_error("pipe");
  }
  g_signal_pipe = sig_pipe[1];
  struct sigaction sa {};
  sa.sa_handler = note_signal;
  ::sigaction(SIGWINCH, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);

  RawTerminal raw;
  const int screen = screen_fd();
  std::string out;  // frames to the keeper
  bool prefix = false;
  std::optional<AttachEnd> end;
  auto process_frames = [&]() {
    size_t at = 0;
    while (!end && in.size() - at >= console::kFrameHeader) {
      uint32_t n = 0;
      std::memcpy(&n, in.data() + at + 1, 4);
      if (in.size() - at - console::kFrameHeader < n) {
        break;
      }
      auto type = static_cast<console::Frame>(in[at]);
      std::string_view payload(in.data() + at + console::kFrameHeader, n);
      at += console::kFrameHeader + n;
      if (type == console::Frame::kOutput) {
        track_alt_screen(payload, g_alt_screen);
        if (!console::write_fully(screen, payload, -1)) {
          end = AttachEnd::kDetached;  // our terminal is gone
        }
      } else if (type == console::Frame::kEnded) {
        if (payload == "all") {
          end = AttachEnd::kAllEnded;
        } else if (opts.end_with_first) {
          end = AttachEnd::kFirstEnded;
        }
      } else if (type == console::Frame::kTakenOver) {
        end = AttachEnd::kTakenOver;
      }
    }
    in.erase(0, at);
  };
  process_frames();
  while (!end) {
    pollfd p[4] = {{0, POLLIN, 0},
                   {conn->get(), static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0},
                   {sig_pipe[0], POLLIN, 0},
                   {opts.hangup_fd, POLLIN, 0}};
    if (::poll(p, 4, -1) < 0) {
      continue;
    }
    if (p[2].revents & POLLIN) {
      char sigs[16];
      ssize_t n = ::read(sig_pipe[0], sigs, sizeof sigs);
      for (ssize_t i = 0; i < n; ++i) {
        if (sigs[i] == SIGHUP) {
          end = AttachEnd::kDetached;  // the terminal hung up: the program runs on
        } else if (sigs[i] == SIGWINCH) {
          console::append_frame(out, console::Frame::kResize, size_payload());
        }
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n <= 0) {
        end = AttachEnd::kDetached;
      }
      std::string keys;
      for (ssize_t i = 0; i < n; ++i) {
        char c = buf[i];
        if (prefix) {
          prefix = false;
          if (c == kDetachKey) {
            end = AttachEnd::kDetached;
            break;
          }
          keys += kDetachPrefix;
          if (c == kDetachPrefix) {
            continue;
          }
        } else if (c == kDetachPrefix) {
          prefix = true;
          continue;
        }
        keys += c;
      }
      if (!keys.empty()) {
        console::append_frame(out, console::Frame::kInput, keys);
      }
    }
    if (p[3].revents & (POLLIN | POLLHUP)) {
      end = AttachEnd::kStopped;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(conn->get(), buf, sizeof buf);
      if (n <= 0) {
        if (!end) {
          end = AttachEnd::kKeeperGone;
        }
      } else {
        in.append(buf, static_cast<size_t>(n));
        process_frames();
      }
    }
    if (!out.empty()) {
      ssize_t n = ::send(conn->get(), out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        out.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN && !end) {
        end = AttachEnd::kKeeperGone;
      }
    }
  }
  ::signal(SIGWINCH, SIG_DFL);
  ::close(sig_pipe[0]);
  ::close(sig_pipe[1]);
  g_signal_pipe = -1;
  return *end;
}

void say_detached(const std::string& name, AttachEnd how) {
  if (how == AttachEnd::kFirstEnded || how == AttachEnd::kAllEnded) {
    return;  // as if the program had been started without vos
  }
  // Modes the program set for itself would confuse the shell: off again.
  std::string reset =
      "\x1b[0m\x1b[?25h\x1b[?1l\x1b>\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l"
      "\x1b[?1006l";
  if (g_alt_screen) {
    reset += "\x1b[?1049l";
  }
  reset += "\r\n";
  (void)console::write_fully(screen_fd(), reset, -1);
  const char* why = how == AttachEnd::kTakenOver    ? "another vos attach took its terminal"
                    : how == AttachEnd::kKeeperGone ? "its keeper died; the program runs on"
                                                    : "it runs on";
  std::fprintf(stderr, "vos: detached from %s (%s); vos attach %s to return\n", name.c_str(), why,
               name.c_str());
}

}  // namespace vos::cli
