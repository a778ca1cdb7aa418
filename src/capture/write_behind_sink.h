// Host side (keeper). A PageSink that writes an image's pages on a second thread: while one
// buffer is written to the page cache, the next batch of the program's memory is read into the
// other and checksummed there, while it is in cache. Writing to the page cache costs more than
// reading the program's memory, so the checksums go with the reading.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "capture/page_writer.h"

namespace vos::capture {

class WriteBehindSink final : public PageSink {
 public:
  explicit WriteBehindSink(image::ImageWriter& writer);
  WriteBehindSink(const WriteBehindSink&) = delete;
  WriteBehindSink& operator=(const WriteBehindSink&) = delete;
  ~WriteBehindSink() override;  // waits for the writes (their error is lost: call finish())

  uint64_t position() const override { return start_ + given_; }
  // Data inside the buffer direct() returned last is queued; anything else is written at once,
  // after everything queued before it.
  Status write(const void* data, size_t size) override;
  // One of two buffers (at most kBufferBytes), once the writes from its last use are done.
  char* direct(size_t size) override;
  // Waits until everything given is in the image; the first write error, if any. The writer may
  // be used directly again afterwards.
  Status finish();

  static constexpr size_t kBufferBytes = 4 << 20;

 private:
  using Piece = std::pair<const char*, size_t>;
  struct Batch {
    int buffer;  // index into buffers(), or -1: pieces not in either buffer
    std::vector<Piece> pieces;
    bool hashed;  // checksummed already (ImageWriter::hash_for_write): only to be written
  };

  void submit_filling();
  void wait_idle(std::unique_lock<std::mutex>& lock);
  void run();

  image::ImageWriter& writer_;
  uint64_t start_;
  uint64_t given_ = 0;
  int filling_ = -1;  // the buffer direct() handed out, while its pieces are being given
  std::vector<Piece> filling_pieces_;
  bool filling_hashed_ = false;  // filling_pieces_ went through hash_for_write

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;        // guarded by mu_
  bool busy_[2] = {false, false};  // queued or being written; guarded by mu_
  bool writing_ = false;           // guarded by mu_
  bool stop_ = false;              // guarded by mu_
  Status error_;                   // the first failed write; guarded by mu_
  std::thread thread_;
};

}  // namespace vos::capture
