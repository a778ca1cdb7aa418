// Host side. A read-only shared mapping of a whole file, unmapped exactly once. Reading an image
// through a mapping uses the page cache in place instead of copying it into a buffer first.
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>

#include <cstdint>
#include <utility>

#include "base/result.h"

namespace vos {

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() { reset(); }

  // Maps all of `fd` as it is now. A file cut short later faults a reader touching the lost
  // end (SIGBUS); the kernel's own copies from it (UFFDIO_COPY) fail with EFAULT instead.
  static Result<MappedFile> map_readonly(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return sys_error("fstat of fd {}", fd);
    }
    MappedFile m;
    m.size_ = static_cast<uint64_t>(st.st_size);
    if (m.size_ == 0) {
      return m;
    }
    void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      return sys_error("mapping fd {} ({} bytes)", fd, m.size_);
    }
    m.data_ = static_cast<const char*>(p);
    return m;
  }

  const char* data() const { return data_; }
  uint64_t size() const { return size_; }
  bool contains(uint64_t offset, uint64_t len) const {
    return offset <= size_ && len <= size_ - offset;
  }

 private:
  void reset() {
    if (data_ != nullptr) {
      ::munmap(const_cast<char*>(data_), size_);
    }
    data_ = nullptr;
    size_ = 0;
  }

  const char* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace vos
