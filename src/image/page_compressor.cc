// Host side (capture, in the keeper).
#include "image/page_compressor.h"

#include <algorithm>
#include <cstring>

#include "base/fast_hash.h"
#include "image/page_codec.h"

namespace vos::image {

PageCompressor::PageCompressor(abi::PageCodec codec, unsigned threads, Sink sink)
    : codec_(codec), sink_(std::move(sink)) {
  if (threads == 0) {
    threads = std::max(1u, std::thread::hardware_concurrency());
  }
  // Two frames per worker keep every worker busy while the caller writes one out; more would
  // only hold memory (each frame in flight is about 2 x kFrameSize).
  max_in_flight_ = 2 * threads;
  for (unsigned i = 0; i < threads; ++i) {
    workers_.emplace_back([this] { worker(); });
  }
}

PageCompressor::~PageCompressor() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    pending_.clear();
  }
  work_cv_.notify_all();
  for (auto& t : workers_) {
    t.join();
  }
}

void PageCompressor::worker() {
  for (;;) {
    Job* job = nullptr;
    {
      std::unique_lock<std::mutex> l(mu_);
      work_cv_.wait(l, [&] { return stop_ || !pending_.empty(); });
      if (stop_) {
        return;
      }
      job = pending_.front();
      pending_.pop_front();
    }
    abi::PageFrame& f = job->frame;
    auto used = compress_frame(codec_, job->in.data(), job->in.size(), job->out);
    f.codec = static_cast<uint32_t>(used);
    f.logical_size = static_cast<uint32_t>(job->in.size());
    f.stored_size =
        static_cast<uint32_t>(used == abi::PageCodec::kNone ? job->in.size() : job->out.size());
    f.checksum = xxh3(job->in.data(), job->in.size());
    {
      std::lock_guard<std::mutex> l(mu_);
      job->done = true;
    }
    done_cv_.notify_one();
  }
}

Status PageCompressor::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    if (!current_) {
      if (spare_.empty()) {
        current_ = std::make_unique<Job>();
        current_->in.reserve(kFrameSize);
      } else {
        current_ = std::move(spare_.back());
        spare_.pop_back();
      }
      current_->in.clear();
      current_->done = false;
      current_->frame = {};
      current_->frame.logical_offset = logical_size_;
    }
    size_t n = std::min(size, kFrameSize - current_->in.size());
    current_->in.insert(current_->in.end(), p, p + n);
    p += n;
    size -= n;
    logical_size_ += n;
    if (current_->in.size() == kFrameSize) {
      VOS_TRY(submit_current(), "compressing pages");
    }
  }
  return {};
}

size_t PageCompressor::in_flight() {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size();
}

Status PageCompressor::submit_current() {
  VOS_TRY(write_finished(false), "writing frames");
  // Keep the number of frames in memory bounded: wait for the oldest to be written.
  while (in_flight() >= max_in_flight_) {
    VOS_TRY(write_finished(true), "writing frames");
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back(current_.get());
    queue_.push_back(std::move(current_));
  }
  work_cv_.notify_one();
  return {};
}

Status PageCompressor::write_finished(bool block) {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock<std::mutex> l(mu_);
      if (queue_.empty()) {
        return {};
      }
      if (!queue_.front()->done) {
        if (!block) {
          return {};
        }
        done_cv_.wait(l, [&] { return queue_.front()->done; });
      }
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    block = false;  // one frame written frees a slot; the rest only if already done
    job->frame.stored_offset = stored_size_;
    // A frame that did not shrink is written from its input: no copy.
    const auto& bytes =
        job->frame.codec == static_cast<uint32_t>(abi::PageCodec::kNone) ? job->in : job->out;
    VOS_TRY(sink_(bytes.data(), bytes.size()), "frame at logical offset {}",
            job->frame.logical_offset);
    stored_size_ += bytes.size();
    frames_.push_back(job->frame);
    spare_.push_back(std::move(job));
  }
}

Result<std::vector<abi::PageFrame>> PageCompressor::finish() {
  if (current_ && !current_->in.empty()) {
    VOS_TRY(submit_current(), "compressing pages");
  }
  while (in_flight() > 0) {
    VOS_TRY(write_finished(true), "writing frames");
  }
  return std::move(frames_);
}

}  // namespace vos::image
