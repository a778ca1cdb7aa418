// Host side (keeper). While a checkpoint runs, tells the `vos checkpoint` that asked for it how
// far it got: a line of JSON on the request's connection every kPeriod, before the reply.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "capture/checkpoint.h"

namespace vos::keeper {

class ProgressReporter {
 public:
  static constexpr std::chrono::milliseconds kPeriod{200};

  // Reports `progress` on connection `fd` (not owned) until destroyed.
  ProgressReporter(int fd, const capture::CheckpointProgress& progress);
  ~ProgressReporter();  // stops; no line follows
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

 private:
  void run();

  int fd_;
  const capture::CheckpointProgress& progress_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace vos::keeper
