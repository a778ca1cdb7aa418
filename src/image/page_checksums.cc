// Host side (restore, inspect).
#include "image/page_checksums.h"

#include <cstring>

namespace vos::image {

Result<std::optional<PageChecksums>> read_page_checksums(const ImageReader& reader) {
  const abi::SectionEntry* pages = reader.find(abi::SectionType::kPages);
  if (pages == nullptr || reader.find(abi::SectionType::kPageChecksums) == nullptr ||
      reader.find(abi::SectionType::kPageFrames) != nullptr) {
    return std::optional<PageChecksums>();
  }
  auto text = reader.read_section(abi::SectionType::kPageChecksums);
  if (!text) {
    return std::move(text).error();
  }
  abi::PageChecksumsHeader h{};
  constexpr uint64_t kMaxChunk = 64ull << 20;
  if (text->size() < sizeof h) {
    return user_error("image {}: corrupt: page checksums section too short", reader.path());
  }
  std::memcpy(&h, text->data(), sizeof h);
  if (h.chunk_size == 0 || h.chunk_size % abi::kPageSize != 0 || h.chunk_size > kMaxChunk ||
      h.count != (pages->size + h.chunk_size - 1) / h.chunk_size ||
      text->size() != sizeof h + h.count * sizeof(uint64_t)) {
    return user_error("image {}: corrupt: page checksums do not match the pages section",
                      reader.path());
  }
  PageChecksums out;
  out.chunk_size = h.chunk_size;
  out.sums.resize(h.count);
  std::memcpy(out.sums.data(), text->data() + sizeof h, h.count * sizeof(uint64_t));
  return std::optional<PageChecksums>(std::move(out));
}

}  // namespace vos::image
