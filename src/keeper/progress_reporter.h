// Host side (keeper). Keeps company with the `vos checkpoint` that asked for a checkpoint while
// it runs: every kPeriod it tells it how far the checkpoint got (a line of JSON on the request's
// connection, before the reply), if it asked for that, and calls the checkpoint off once it is
// gone (its end of the connection closed: Ctrl-C, or killed).
#pragma once

#include <chrono>
#include <thread>

#include "base/unique_fd.h"
#include "capture/checkpoint.h"

namespace vos::keeper {

class ProgressReporter {
 public:
  static constexpr std::chrono::milliseconds kPeriod{200};

  // Watches connection `fd` (not owned) until destroyed; with `send_lines`, reports `progress`
  // on it too. Sets progress.cancelled when the other end is gone.
  ProgressReporter(int fd, bool send_lines, capture::CheckpointProgress& progress);
  ~ProgressReporter();  // stops; no line follows
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

 private:
  void run();
  void send_line();

  int fd_;
  bool send_lines_;
  capture::CheckpointProgress& progress_;
  UniqueFd stop_;  // eventfd: the checkpoint is over
  std::thread thread_;
};

}  // namespace vos::keeper
