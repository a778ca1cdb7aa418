// Host side (keeper). Copies a program's pages into an image: which pages (planned per area in
// CaptureContext), read from the program or its copy-on-write snapshot, into a PageSink.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>

#include "capture/capture_context.h"

namespace vos::capture {

// Where page data goes. Runs recorded in the image use position() as their offset.
class PageSink {
 public:
  virtual ~PageSink() = default;
  virtual uint64_t position() const = 0;  // pages-section offset of the next byte written
  virtual Status write(const void* data, size_t size) = 0;
  // Memory the next `size` bytes may be read into before write()s of (parts of) them, saving a
  // copy; null if the sink has none.
  virtual char* direct(size_t /*size*/) { return nullptr; }
};

// Straight into the open pages section of an image.
class WriterSink final : public PageSink {
 public:
  explicit WriterSink(image::ImageWriter& writer) : writer_(writer) {}
  uint64_t position() const override { return writer_.section_position(); }
  Status write(const void* data, size_t size) override { return writer_.write(data, size); }

 private:
  image::ImageWriter& writer_;
};

// Memory kept by the keeper from one checkpoint to the next, its pages already faulted in: the
// first touch of fresh memory costs milliseconds per MiB on some machines, which must not
// happen while the program is stopped.
class FrozenBuffer {
 public:
  FrozenBuffer() = default;
  FrozenBuffer(FrozenBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  FrozenBuffer& operator=(FrozenBuffer&&) = delete;
  ~FrozenBuffer();
  // Grows to at least `bytes`, faulting every page in now.
  Status reserve(size_t bytes);
  char* data() { return data_; }
  size_t capacity() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

// Into a FrozenBuffer, to be written to the image once the program runs again: copying to
// memory while it is frozen is several times faster than writing to the page cache.
class MemorySink final : public PageSink {
 public:
  MemorySink(FrozenBuffer& buffer, uint64_t base) : buffer_(buffer), base_(base) {}
  uint64_t position() const override { return base_ + used_; }
  Status write(const void* data, size_t size) override;
  char* direct(size_t size) override;
  Status flush_to(image::ImageWriter& writer) { return writer.write(buffer_.data(), used_); }

 private:
  FrozenBuffer& buffer_;
  uint64_t base_;
  size_t used_ = 0;
};

// Appends the pages of the planned areas that belong to `pass`, read from process `source`
// (the program itself, or its copy-on-write snapshot), to `sink`. The copy buffer is reused
// (see FrozenBuffer).
Status write_pages(CaptureContext& ctx, PageSink& sink, pid_t source, PagePass pass);

}  // namespace vos::capture
