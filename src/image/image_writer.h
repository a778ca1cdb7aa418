// Host side (capture). Writes an image file section by section; the image only appears under its
// final name after commit(), so a crash or kill -9 mid-checkpoint never leaves a half image.
#pragma once

#include <xxhash.h>

#include <string>
#include <vector>

#include "abi/image_abi.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vos::image {

class ImageWriter {
 public:
  // Creates `final_path`'s directory (mode 0700) if missing and a temporary file beside it (0600).
  static Result<ImageWriter> create(const std::string& final_path);

  ImageWriter(ImageWriter&&) noexcept;
  ImageWriter& operator=(ImageWriter&&) = delete;
  ~ImageWriter();  // removes the temporary file unless committed

  Status begin_section(abi::SectionType type);
  Status write(const void* data, size_t size);
  // Bytes written so far in the open section: the offset the next write() lands at.
  uint64_t section_position() const { return pos_ - section_start_; }
  Status end_section();
  // Writes the section table and header, fsyncs, renames to the final name, fsyncs the directory.
  Status commit();

  uint64_t bytes_written() const { return pos_; }
  const std::string& final_path() const { return final_path_; }

 private:
  ImageWriter(std::string final_path, std::string temp_path, UniqueFd fd);
  Status pad_to_alignment();
  Status write_raw(const void* data, size_t size);

  std::string final_path_;
  std::string temp_path_;
  UniqueFd fd_;
  uint64_t pos_ = 0;
  uint64_t section_start_ = 0;
  bool in_section_ = false;
  bool committed_ = false;
  abi::SectionType current_type_{};
  XXH3_state_t* hash_ = nullptr;
  std::vector<abi::SectionEntry> table_;
};

}  // namespace vos::image
