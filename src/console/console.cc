// Host side (keeper).
#include "console/console.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "console/frames.h"

namespace vos::console {

namespace {

// A terminal that reads slower than the program writes holds this much before the pty is left
// unread (and the program waits on it, as on a terminal's flow control).
constexpr size_t kClientBacklog = 1 << 20;
// The model is fed in batches (when this much is waiting, or the output pauses for kModelIdleMs,
// or the screen is needed): a pty read is a few KiB, and only a batch of many screens of plain
// lines lets the model skip what scrolls off (ScreenModel::feed). Terminals get each read at once.
constexpr size_t kModelBatch = 256 << 10;
constexpr int kModelIdleMs = 20;

winsize size_of(int master) {
  winsize ws{};
  if (::ioctl(master, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) {
    ws.ws_row = 24;
    ws.ws_col = 80;
  }
  return ws;
}

// The pty's line discipline with no editing, echo or signals: the bytes read or written are
// the bytes of the queue.
termios raw_of(const termios& mode) {
  termios raw = mode;
  raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
  raw.c_iflag &= ~static_cast<tcflag_t>(ICRNL | INLCR | IGNCR | IXON | ISTRIP);
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  return raw;
}

}  // namespace

Console::Console(UniqueFd master, std::string slave_path, const std::string& screen,
                 bool keep_until_attach)
    : master_(std::move(master)),
      slave_path_(std::move(slave_path)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      model_(size_of(master_.get()).ws_row, size_of(master_.get()).ws_col) {
  if (!screen.empty()) {
    model_.feed(screen);
  }
  keeping_ = keep_until_attach;
  thread_ = std::thread([this] { run(); });
}

Console::~Console() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake();
  thread_.join();
}

void Console::wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

void Console::attach(UniqueFd conn, const AttachRequest& req) {
  {
    std::lock_guard lock(mu_);
    arriving_.emplace_back(std::move(conn), req);
  }
  wake();
}

void Console::program_ended(bool all) {
  {
    std::lock_guard lock(mu_);
    ended_ = std::max(ended_, all ? 2 : 1);
  }
  wake();
  if (!all) {
    return;
  }
  // The last process is gone and the keeper exits next: give the terminals a moment to take
  // the program's last words.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < until) {
    {
      std::lock_guard lock(mu_);
      bool sent = ended_told_;
      for (const auto& c : clients_) {
        sent = sent && (c->out.empty() || !c->fd.valid());
      }
      if (sent) {
        return;
      }
    }
    ::usleep(2000);
  }
}

void Console::send_output_locked(std::string_view bytes) {
  for (auto& c : clients_) {
    if (c->fd.valid()) {
      append_frame(c->out, Frame::kOutput, bytes);
    }
  }
}

void Console::flush_clients_locked() {
  for (auto& c : clients_) {
    while (c->fd.valid() && !c->out.empty()) {
      ssize_t n = ::write(c->fd.get(), c->out.data(), c->out.size());
      if (n > 0) {
        c->out.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (n < 0 && errno != EAGAIN) {
          c->fd.reset();  // gone
        }
        break;
      }
    }
  }
}

void Console::drain_master_locked() {
  char buf[65536];
  while (true) {
    ssize_t n = ::read(master_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      if (n < 0 && errno == EIO) {
        master_hung_ = true;  // no process has the slave open
      }
      return;
    }
    std::string_view got(buf, static_cast<size_t>(n));
    unmodeled_.append(got);
    if (unmodeled_.size() >= kModelBatch) {
      catch_up_model_locked();
    }
    if (keeping_ && kept_.size() < kClientBacklog * 4) {
      kept_.append(got);
    }
    send_output_locked(got);
  }
}

void Console::catch_up_model_locked() {
  model_.feed(unmodeled_);
  unmodeled_.clear();
}

void Console::resize_locked(int rows, int cols) {
  if (rows <= 0 || cols <= 0 || rows > 4096 || cols > 4096) {
    return;
  }
  winsize now = size_of(master_.get());
  if (now.ws_row != rows || now.ws_col != cols) {
    winsize ws{static_cast<unsigned short>(rows), static_cast<unsigned short>(cols), 0, 0};
    (void)::ioctl(master_.get(), TIOCSWINSZ, &ws);  // the kernel sends the program SIGWINCH
  }
  if (model_.rows() != rows || model_.cols() != cols) {
    catch_up_model_locked();  // what came before was written for the old size
    model_.resize(rows, cols);
  }
}

void Console::handle_client_input_locked(Client& c) {
  Frame type{};
  std::string payload;
  while (take_frame(c.in, type, payload)) {
    if (type == Frame::kInput) {
      to_program_ += payload;
    } else if (type == Frame::kResize) {
      int rows = 0, cols = 0;
      if (std::sscanf(payload.c_str(), "%d %d", &rows, &cols) == 2) {
        resize_locked(rows, cols);
      }
    }
  }
  write_keys_locked();
}

void Console::write_keys_locked() {
  while (!to_program_.empty()) {
    ssize_t n = ::write(master_.get(), to_program_.data(), to_program_.size());
    if (n <= 0) {
      break;  // the pty's input queue is full: the rest waits for POLLOUT
    }
    to_program_.erase(0, static_cast<size_t>(n));
  }
}

void Console::run() {
  std::vector<pollfd> pfds;
  int told = 0;
  while (true) {
    int timeout = -1;
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        return;
      }
      for (auto& [conn, req] : arriving_) {
        std::string reply = R"({"ok":true})"
                            "\n";
        if (!write_fully(conn.get(), reply, 1000)) {
          continue;
        }
        ::fcntl(conn.get(), F_SETFL, O_NONBLOCK);
        if (!req.shared) {
          for (auto& c : clients_) {
            append_frame(c->out, Frame::kTakenOver, "");
          }
          flush_clients_locked();
          clients_.clear();
        }
        resize_locked(req.rows, req.cols);
        auto c = std::make_unique<Client>();
        c->fd = std::move(conn);
        catch_up_model_locked();
        if (req.redraw || (keeping_ && kept_.size() >= kClientBacklog * 4)) {
          append_frame(c->out, Frame::kOutput, model_.render());
        } else if (keeping_) {
          append_frame(c->out, Frame::kOutput, kept_);
        }
        keeping_ = false;
        kept_.clear();
        kept_.shrink_to_fit();
        clients_.push_back(std::move(c));
      }
      arriving_.clear();
      if (ended_ > told) {
        drain_master_locked();
        for (int level = told + 1; level <= ended_; ++level) {
          for (auto& c : clients_) {
            append_frame(c->out, Frame::kEnded, level == 2 ? "all" : "first");
          }
        }
        told = ended_;
        ended_told_ = told == 2;
      }
      flush_clients_locked();
      std::erase_if(clients_, [](const auto& c) { return !c->fd.valid(); });
      size_t backlog = 0;
      for (const auto& c : clients_) {
        backlog += c->out.size();
      }
      pfds.clear();
      pfds.push_back({wake_.get(), POLLIN, 0});
      short master_events = 0;
      if (!master_hung_ && backlog < kClientBacklog) {
        master_events |= POLLIN;
      }
      if (!to_program_.empty()) {
        master_events |= POLLOUT;
      }
      pfds.push_back({master_events != 0 ? master_.get() : -1, master_events, 0});
      for (const auto& c : clients_) {
        pfds.push_back(
            {c->fd.get(), static_cast<short>(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
      }
      if (master_hung_) {
        timeout = 200;  // look again later: a process may open the terminal anew
      }
      if (!unmodeled_.empty()) {
        timeout = kModelIdleMs;
      }
    }
    int r = ::poll(pfds.data(), pfds.size(), timeout);
    std::lock_guard lock(mu_);
    if (r == 0) {
      catch_up_model_locked();
      master_hung_ = false;
      continue;
    }
    if (r < 0) {
      continue;
    }
    if (pfds[0].revents & POLLIN) {
      uint64_t v = 0;
      (void)!::read(wake_.get(), &v, sizeof v);
    }
    if (pfds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      drain_master_locked();
      if (pfds[1].revents & POLLHUP) {
        master_hung_ = true;
      }
    }
    for (size_t i = 2; i < pfds.size() && i - 2 < clients_.size(); ++i) {
      Client& c = *clients_[i - 2];
      if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[16384];
        ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
        if (n > 0) {
          c.in.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || errno != EAGAIN) {
          c.fd.reset();  // detached
          continue;
        }
      }
    }
    for (auto& c : clients_) {
      if (c->fd.valid()) {
        handle_client_input_locked(*c);
      }
    }
    if (pfds[1].revents & POLLOUT) {
      write_keys_locked();
    }
    flush_clients_locked();
  }
}

Status put_back_input(int master, const std::string& slave_path, const std::string& input,
                      const termios& mode) {
  termios raw = raw_of(mode);
  raw.c_cc[VMIN] = 1;
  if (::tcsetattr(master, TCSANOW, &raw) != 0) {
    return sys_error("setting {} raw to put its unread input back", slave_path);
  }
  Status st;
  if (!write_fully(master, input, 1000)) {
    st = sys_error("writing the unread input back to {}", slave_path);
  }
  // The line discipline takes what the master wrote in a kernel worker: wait until the queue
  // holds it all before the program's mode (which may edit lines) is back.
  UniqueFd slave(::open(slave_path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  for (int i = 0; st && slave.valid() && i < 200; ++i) {
    int queued = 0;
    if (::ioctl(slave.get(), FIONREAD, &queued) != 0 ||
        static_cast<size_t>(queued) >= input.size()) {
      break;
    }
    ::usleep(500);
  }
  if (::tcsetattr(master, TCSANOW, &mode) != 0 && st) {
    st = sys_error("setting the mode of {}", slave_path);
  }
  return st;
}

Result<ConsoleSnapshot> Console::snapshot(bool keep_running) {
  std::lock_guard lock(mu_);
  drain_master_locked();
  catch_up_model_locked();
  flush_clients_locked();
  ConsoleSnapshot s;
  if (::tcgetattr(master_.get(), &s.mode) != 0) {
    return sys_error("reading the mode of {}", slave_path_);
  }
  winsize ws = size_of(master_.get());
  s.rows = ws.ws_row;
  s.cols = ws.ws_col;
  pid_t pg = 0, sid = 0;
  if (::ioctl(master_.get(), TIOCGPGRP, &pg) == 0) {
    s.foreground = pg;
  }
  if (::ioctl(master_.get(), TIOCGSID, &sid) == 0) {
    s.session = sid;
  }
  // What was typed and not read: the whole queue, once the discipline is raw for a moment (a
  // line being edited counts too).
  UniqueFd slave(::open(slave_path_.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!slave.valid()) {
    return sys_error("opening {} to read its unread input", slave_path_);
  }
  int queued = 0;
  bool maybe_input = (s.mode.c_lflag & ICANON) != 0 ||
                     (::ioctl(slave.get(), FIONREAD, &queued) == 0 && queued > 0);
  if (maybe_input) {
    // The keeper is a background process of the terminal's session: it reads only once its own
    // group is the foreground one, for this moment, the program frozen (SIGTTOU is blocked).
    bool lent = s.foreground > 0 && ::tcsetpgrp(slave.get(), ::getpgrp()) == 0;
    termios raw = raw_of(s.mode);
    if (::tcsetattr(slave.get(), TCSANOW, &raw) != 0) {
      return sys_error("setting {} raw to read its unread input", slave_path_);
    }
    char buf[4096];
    ssize_t n;
    while ((n = ::read(slave.get(), buf, sizeof buf)) > 0) {
      s.input.append(buf, static_cast<size_t>(n));
    }
    if (::tcsetattr(slave.get(), TCSANOW, &s.mode) != 0) {
      return sys_error("setting the mode of {} back", slave_path_);
    }
    if (lent && ::tcsetpgrp(slave.get(), s.foreground) != 0) {
      return sys_error("giving {} back to process group {}", slave_path_, s.foreground);
    }
    if (keep_running && !s.input.empty()) {
      VOS_TRY(put_back_input(master_.get(), slave_path_, s.input, s.mode),
              "the terminal's unread input");
    }
  }
  s.screen = model_.render();
  return s;
}

}  // namespace vos::console
