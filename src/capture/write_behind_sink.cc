// Host side (keeper).
#include "capture/write_behind_sink.h"

namespace vos::capture {

namespace {

// Kept from one checkpoint to the next, like write_pages' own buffer: faulting in fresh memory
// costs milliseconds per MiB on some machines.
FrozenBuffer* buffers() {
  static FrozenBuffer both[2];
  return both;
}

}  // namespace

WriteBehindSink::WriteBehindSink(image::ImageWriter& writer)
    : writer_(writer), start_(writer.section_position()) {
  thread_ = std::thread([this] { run(); });
}

WriteBehindSink::~WriteBehindSink() {
  (void)finish();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WriteBehindSink::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) {
      return;  // stop_
    }
    Batch batch = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    bool failed = !error_.ok();
    lock.unlock();
    Status st;
    for (const auto& [data, size] : batch.pieces) {
      if (failed) {
        break;
      }
      st = batch.hashed ? writer_.write_hashed(data, size) : writer_.write(data, size);
      if (!st) {
        break;
      }
    }
    lock.lock();
    if (error_.ok() && !st.ok()) {
      error_ = std::move(st);
    }
    if (batch.buffer >= 0) {
      busy_[batch.buffer] = false;
    }
    writing_ = false;
    cv_.notify_all();
  }
}

void WriteBehindSink::submit_filling() {
  if (filling_ < 0) {
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (filling_pieces_.empty()) {
      busy_[filling_] = false;
    } else {
      queue_.push_back({filling_, std::move(filling_pieces_), filling_hashed_});
    }
  }
  filling_pieces_.clear();
  filling_ = -1;
  cv_.notify_all();
}

void WriteBehindSink::wait_idle(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return queue_.empty() && !writing_; });
}

char* WriteBehindSink::direct(size_t size) {
  if (size > kBufferBytes) {
    return nullptr;
  }
  int last = filling_;
  submit_filling();
  int next = last == 0 ? 1 : 0;
  FrozenBuffer& buf = buffers()[next];
  if (!buf.reserve(kBufferBytes)) {
    return nullptr;
  }
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !busy_[next]; });
  busy_[next] = true;
  filling_ = next;
  return buf.data();
}

Status WriteBehindSink::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  if (filling_ >= 0) {
    const char* b = buffers()[filling_].data();
    if (p >= b && p + size <= b + kBufferBytes) {
      if (filling_pieces_.empty()) {
        filling_hashed_ = writer_.can_split_writes();
      }
      if (filling_hashed_) {
        writer_.hash_for_write(p, size);
      }
      filling_pieces_.emplace_back(p, size);
      given_ += size;
      std::lock_guard lock(mu_);
      return error_;  // an earlier batch's failure, as soon as it is known
    }
  }
  submit_filling();
  std::unique_lock lock(mu_);
  wait_idle(lock);
  VOS_TRY(error_, "writing pages");
  lock.unlock();
  given_ += size;
  return writer_.write(data, size);
}

Status WriteBehindSink::finish() {
  submit_filling();
  std::unique_lock lock(mu_);
  wait_idle(lock);
  return error_;
}

}  // namespace vos::capture
