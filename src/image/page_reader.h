// Host side (restore, inspect). The logical page stream of an image, whether stored plain or
// in compressed frames: validates the frame index and reads any logical range.
#pragma once

#include <vector>

#include "abi/image_abi.h"
#include "base/result.h"
#include "image/image_reader.h"

namespace vos::image {

class PageReader {
 public:
  // Reads and checks the frame index, if the image has one. Borrows `r`'s fd: `r` must outlive
  // the PageReader (moving `r` is fine, the descriptor stays the same).
  static Result<PageReader> open(const ImageReader& r);

  bool compressed() const { return compressed_; }
  uint32_t codec() const { return codec_; }  // PageCodec requested at checkpoint
  uint64_t logical_size() const { return logical_size_; }
  uint64_t stored_size() const { return pages_.size; }
  const abi::SectionEntry& pages_section() const { return pages_; }
  const std::vector<abi::PageFrame>& frames() const { return frames_; }
  // True when the pages section holds the logical stream byte for byte: a plain image, or a
  // compressed one in which no frame shrank (random memory), all stored plain in place.
  bool stored_as_logical() const;

  // Reads `size` logical bytes at logical `offset`, decoding the frames that hold them.
  Status read(uint64_t offset, void* out, uint64_t size) const;
  // Decodes frame `i` into `out` (frames()[i].logical_size bytes), checking its checksum.
  Status decode_frame(size_t i, char* out) const;

 private:
  PageReader() = default;
  Status load_index(const ImageReader& r);

  int fd_ = -1;
  std::string path_;
  abi::SectionEntry pages_{};
  bool compressed_ = false;
  uint32_t codec_ = 0;
  uint64_t logical_size_ = 0;
  std::vector<abi::PageFrame> frames_;
};

}  // namespace vos::image
