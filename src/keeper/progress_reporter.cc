// Host side (keeper).
#include "keeper/progress_reporter.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <string>

namespace vos::keeper {

ProgressReporter::ProgressReporter(int fd, bool send_lines, capture::CheckpointProgress& progress)
    : fd_(fd), send_lines_(send_lines), progress_(progress), thread_([this] { run(); }) {}

ProgressReporter::~ProgressReporter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ProgressReporter::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, kPeriod, [this] { return stop_; })) {
    // The CLI shut its sending side down after the request; POLLHUP means it closed the rest.
    pollfd p{fd_, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0) {
      progress_.cancelled = true;
      return;
    }
    if (send_lines_) {
      send_line();
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
