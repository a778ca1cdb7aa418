// Host side (restore, inspect).
#include "image/page_reader.h"

#include <algorithm>
#include <cstring>

#include "image/page_codec.h"

namespace vos::image {

Result<PageReader> PageReader::open(const ImageReader& r) {
  PageReader p;
  p.fd_ = r.fd();
  p.path_ = r.path();
  if (const auto* e = r.find(abi::SectionType::kPages)) {
    p.pages_ = *e;
  }
  p.logical_size_ = p.pages_.size;
  if (r.find(abi::SectionType::kPageFrames) != nullptr) {
    VOS_TRY(p.load_index(r), "image {}", r.path());
  }
  return p;
}

Status PageReader::load_index(const ImageReader& r) {
  if (r.header().version < abi::kImageVersionFrames) {
    return user_error("corrupt: page frame index in a version {} image", r.header().version);
  }
  auto bytes = r.read_section(abi::SectionType::kPageFrames);
  if (!bytes) {
    return std::move(bytes).error();
  }
  abi::PageFramesHeader h{};
  if (bytes->size() < sizeof h) {
    return user_error("corrupt: page frame index truncated ({} bytes)", bytes->size());
  }
  std::memcpy(&h, bytes->data(), sizeof h);
  if ((bytes->size() - sizeof h) / sizeof(abi::PageFrame) != h.frame_count ||
      (bytes->size() - sizeof h) % sizeof(abi::PageFrame) != 0) {
    return user_error("corrupt: page frame index holds {} bytes for {} frames", bytes->size(),
                      h.frame_count);
  }
  frames_.resize(h.frame_count);
  std::memcpy(frames_.data(), bytes->data() + sizeof h, h.frame_count * sizeof(abi::PageFrame));
  uint64_t logical = 0;
  for (const auto& f : frames_) {
    if (f.logical_offset != logical || f.logical_size == 0 ||
        f.logical_size > abi::kMaxFrameLogical) {
      return user_error("corrupt: page frame at {} does not continue the stream at {}",
                        f.logical_offset, logical);
    }
    if (f.stored_offset > pages_.size || f.stored_size > pages_.size - f.stored_offset) {
      return user_error("corrupt: page frame at {} lies outside the pages section",
                        f.logical_offset);
    }
    if (std::strcmp(codec_name(f.codec), "unknown") == 0) {
      return user_error("corrupt: page frame at {} has unknown codec {}", f.logical_offset,
                        f.codec);
    }
    logical += f.logical_size;
  }
  if (logical != h.logical_size) {
    return user_error("corrupt: page frames hold {} bytes, index says {}", logical, h.logical_size);
  }
  compressed_ = true;
  codec_ = h.codec;
  logical_size_ = h.logical_size;
  return {};
}

bool PageReader::stored_as_logical() const {
  return std::all_of(frames_.begin(), frames_.end(), [](const abi::PageFrame& f) {
    return f.codec == static_cast<uint32_t>(abi::PageCodec::kNone) &&
           f.stored_offset == f.logical_offset && f.stored_size == f.logical_size;
  });
}

Status PageReader::decode_frame(size_t i, char* out) const {
  const abi::PageFrame& f = frames_.at(i);
  if (f.codec == static_cast<uint32_t>(abi::PageCodec::kNone) && f.stored_size == f.logical_size) {
    // Stored plain: read it straight into place, then check it like any frame.
    VOS_TRY(pread_all(fd_, out, f.stored_size, pages_.offset + f.stored_offset, path_), "image {}",
            path_);
    VOS_TRY(check_frame(f, out), "image {}", path_);
    return {};
  }
  thread_local std::vector<char> stored;
  stored.resize(f.stored_size);
  VOS_TRY(pread_all(fd_, stored.data(), f.stored_size, pages_.offset + f.stored_offset, path_),
          "image {}", path_);
  VOS_TRY(decompress_frame(f, stored.data(), out), "image {}", path_);
  return {};
}

Status PageReader::read(uint64_t offset, void* out, uint64_t size) const {
  if (offset > logical_size_ || size > logical_size_ - offset) {
    return user_error("image {}: page data [{}, +{}) outside the {} bytes stored", path_, offset,
                      size, logical_size_);
  }
  char* dst = static_cast<char*>(out);
  if (!compressed_) {
    return pread_all(fd_, dst, size, pages_.offset + offset, path_);
  }
  // The last frame starting at or before `offset`.
  auto it =
      std::upper_bound(frames_.begin(), frames_.end(), offset,
                       [](uint64_t o, const abi::PageFrame& f) { return o < f.logical_offset; });
  std::vector<char> frame;
  for (size_t i = static_cast<size_t>(it - frames_.begin()) - 1; size > 0; ++i) {
    const abi::PageFrame& f = frames_[i];
    frame.resize(f.logical_size);
    VOS_TRY(decode_frame(i, frame.data()), "page data at {}", offset);
    uint64_t skip = offset - f.logical_offset;
    uint64_t n = std::min<uint64_t>(size, f.logical_size - skip);
    std::memcpy(dst, frame.data() + skip, n);
    dst += n;
    offset += n;
    size -= n;
  }
  return {};
}

}  // namespace vos::image
