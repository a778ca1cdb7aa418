// Host side (capture, in the keeper). Turns the logical stream of page data into compressed
// frames: the caller appends bytes, worker threads compress whole frames in parallel, and the
// caller's thread hands finished frames to the sink strictly in order, so the file is still
// written sequentially, by one thread, in large pieces.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "abi/image_abi.h"
#include "base/result.h"

namespace vos::image {

class PageCompressor {
 public:
  // Logical bytes per frame: large enough for the codecs to find repeats and for one write per
  // frame to be a large write, small enough that a reader decodes little more than it needs.
  static constexpr size_t kFrameSize = 1 << 20;

  using Sink = std::function<Status(const void* data, size_t size)>;

  // `threads` workers (0: one per CPU). `sink` writes stored bytes to the file.
  PageCompressor(abi::PageCodec codec, unsigned threads, Sink sink);
  PageCompressor(const PageCompressor&) = delete;
  PageCompressor& operator=(const PageCompressor&) = delete;
  ~PageCompressor();  // stops the workers; frames not yet written are dropped

  Status write(const void* data, size_t size);
  uint64_t logical_size() const { return logical_size_; }
  uint64_t stored_size() const { return stored_size_; }
  // Compresses and writes what is left; returns the index of every frame written, in order.
  Result<std::vector<abi::PageFrame>> finish();

 private:
  struct Job {
    std::vector<char> in;
    std::vector<char> out;
    abi::PageFrame frame{};
    bool done = false;
  };

  Status submit_current();
  size_t in_flight();
  // Writes finished frames from the front of the queue; with `block`, waits for the first.
  Status write_finished(bool block);
  void worker();

  abi::PageCodec codec_;
  Sink sink_;
  size_t max_in_flight_;
  uint64_t logical_size_ = 0;
  uint64_t stored_size_ = 0;
  std::unique_ptr<Job> current_;
  std::vector<std::unique_ptr<Job>> spare_;  // recycled, so frame buffers are allocated once
  std::vector<abi::PageFrame> frames_;

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<std::unique_ptr<Job>> queue_;  // submitted, in logical order; front is written next
  std::deque<Job*> pending_;                // submitted, not yet taken by a worker
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace vos::image
