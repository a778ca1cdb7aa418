// Host side (keeper).
#include "keeper/progress_reporter.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace vos::keeper {

ProgressReporter::ProgressReporter(int fd, bool send_lines, capture::CheckpointProgress& progress)
    : fd_(fd),
      send_lines_(send_lines),
      progress_(progress),
      stop_(::eventfd(0, EFD_CLOEXEC)),
      thread_([this] { run(); }) {}

ProgressReporter::~ProgressReporter() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  thread_.join();
}

void ProgressReporter::run() {
  if (!stop_.valid()) {
    return;  // no eventfd: nothing could end the wait
  }
  using Clock = std::chrono::steady_clock;
  auto next_line = Clock::now() + kPeriod;
  for (;;) {
    // Events 0 on the connection: the CLI shut its sending side down after the request (so it
    // always reads as ended), and POLLHUP, reported anyway, means it closed the rest.
    pollfd fds[2] = {{fd_, 0, 0}, {stop_.get(), POLLIN, 0}};
    int timeout = -1;
    if (send_lines_) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(next_line - Clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 || fds[1].revents != 0) {
      return;  // the checkpoint is over (or polling is impossible: report nothing more)
    }
    if ((fds[0].revents & (POLLHUP | POLLERR)) != 0) {
      progress_.cancelled = true;
      return;
    }
    if (send_lines_ && Clock::now() >= next_line) {
      send_line();
      next_line += kPeriod;
    }
  }
}

void ProgressReporter::send_line() {
  nlohmann::json line = {
      {"progress",
       {{"page_bytes", progress_.page_bytes.load(std::memory_order_relaxed)},
        {"expected_bytes", progress_.expected_bytes.load(std::memory_order_relaxed)}}}};
  std::string out = line.dump() + "\n";
  // A line that does not fit the socket's buffer (a CLI that stopped reading) is dropped; one
  // that was started is finished, or the reply after it would not be a line of its own.
  ssize_t n = ::send(fd_, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  for (size_t sent = n > 0 ? static_cast<size_t>(n) : out.size(); sent < out.size();) {
    n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0 && errno != EINTR) {
      break;
    }
    sent += n > 0 ? static_cast<size_t>(n) : 0;
  }
}

}  // namespace vos::keeper
