// On-disk layout of a vos image: shared by the writer (capture side), the reader (restore side)
// and `vos inspect`. Any change here bumps kImageVersion; docs/image-format.md is the contract.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vos::abi {

inline constexpr char kImageMagic[8] = {'V', 'O', 'S', 'I', 'M', 'G', '\r', '\n'};
inline constexpr uint32_t kImageVersion = 1;
inline constexpr uint64_t kPageSize = 4096;
// Sections start on this boundary so page data can be mmap()ed straight from the file.
inline constexpr uint64_t kSectionAlign = 4096;
inline constexpr uint32_t kMaxSections = 64;

enum class SectionType : uint32_t {
  kMeta = 1,   // JSON document describing the process (see docs/image-format.md)
  kBlobs = 2,  // raw bytes referenced from the JSON by {offset,size}: registers, pipe data...
  kPages = 3,  // memory pages, 4 KiB each, referenced by page runs in the JSON
};

struct ImageHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_size;  // sizeof(ImageHeader)
  uint64_t file_size;    // whole image, so truncation is detected before parsing
  uint64_t section_table_offset;
  uint32_t section_count;
  uint32_t flags;                   // reserved, 0
  uint64_t section_table_checksum;  // XXH3-64 of the section table
  uint64_t header_checksum;         // XXH3-64 of this struct with this field set to 0
};
static_assert(sizeof(ImageHeader) == 56);
static_assert(offsetof(ImageHeader, header_checksum) == 48);

struct SectionEntry {
  uint32_t type;   // SectionType
  uint32_t flags;  // reserved, 0
  uint64_t offset;
  uint64_t size;
  uint64_t checksum;  // XXH3-64 of the section's bytes
};
static_assert(sizeof(SectionEntry) == 32);

}  // namespace vos::abi
