// Host side (restore, inspect). Opens an image and validates its structure before anything is
// trusted: magic, version, sizes, section bounds, checksums. Never crashes on a bad file.
#pragma once

#include <string>
#include <vector>

#include "abi/image_abi.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vos::image {

const char* section_name(uint32_t type);

// pread until `size` bytes arrived; end of file is an error naming `path` and the offset.
Status pread_all(int fd, void* out, uint64_t size, uint64_t offset, const std::string& path);

class ImageReader {
 public:
  // Validates header and section table (not yet the section checksums: see verify()).
  static Result<ImageReader> open(const std::string& path);

  // Checks every section's checksum; an image must pass this before it is restored.
  Status verify() const;
  Status verify_section(const abi::SectionEntry& e) const;

  const abi::ImageHeader& header() const { return header_; }
  const std::vector<abi::SectionEntry>& sections() const { return sections_; }
  const abi::SectionEntry* find(abi::SectionType type) const;
  // Reads a whole (small) section into memory and checks its checksum.
  Result<std::string> read_section(abi::SectionType type) const;
  // Reads `size` bytes at `offset` inside a section, bounds-checked.
  Status read_at(const abi::SectionEntry& e, uint64_t offset, void* out, uint64_t size) const;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  ImageReader(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  Status load();

  std::string path_;
  UniqueFd fd_;
  uint64_t file_size_ = 0;
  abi::ImageHeader header_{};
  std::vector<abi::SectionEntry> sections_;
};

}  // namespace vos::image
