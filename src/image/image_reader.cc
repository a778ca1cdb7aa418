// Host side (restore, inspect).
#include "image/image_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "base/fast_hash.h"
#include "base/mapped_file.h"

namespace vos::image {

const char* section_name(uint32_t type) {
  switch (static_cast<abi::SectionType>(type)) {
    case abi::SectionType::kMeta:
      return "meta";
    case abi::SectionType::kBlobs:
      return "blobs";
    case abi::SectionType::kPages:
      return "pages";
    case abi::SectionType::kPageFrames:
      return "page-frames";
    case abi::SectionType::kPageChecksums:
      return "page-checksums";
  }
  return "unknown";
}

Status pread_all(int fd, void* out, uint64_t size, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sys_error("reading {} at offset {}", path, offset);
    }
    if (n == 0) {
      return user_error("{}: unexpected end of file at offset {}", path, offset);
    }
    p += n;
    size -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

Result<ImageReader> ImageReader::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return sys_error("opening image {}", path);
  }
  ImageReader r(path, UniqueFd(fd));
  VOS_TRY(r.load(), "image {}", path);
  return r;
}

Status ImageReader::load() {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) {
    return sys_error("fstat");
  }
  if (!S_ISREG(st.st_mode)) {
    return user_error("not a regular file");
  }
  file_size_ = static_cast<uint64_t>(st.st_size);
  if (file_size_ < sizeof header_) {
    return user_error("truncated: {} bytes is smaller than the image header", file_size_);
  }
  VOS_TRY(pread_all(fd_.get(), &header_, sizeof header_, 0, path_), "reading header");
  if (std::memcmp(header_.magic, abi::kImageMagic, sizeof header_.magic) != 0) {
    return user_error("not a vos image (bad magic)");
  }
  abi::ImageHeader h = header_;
  h.header_checksum = 0;
  if (xxh3(&h, sizeof h) != header_.header_checksum) {
    return user_error("corrupt: header checksum mismatch");
  }
  if (header_.version < abi::kImageVersionPlain || header_.version > abi::kImageVersion) {
    return user_error("unsupported image version {} (this vos reads versions {} to {})",
                      header_.version, abi::kImageVersionPlain, abi::kImageVersion);
  }
  if (header_.header_size != sizeof header_) {
    return user_error("corrupt: header size {}", header_.header_size);
  }
  if (file_size_ != header_.file_size) {
    return user_error("{}: file is {} bytes, header says {}",
                      file_size_ < header_.file_size ? "truncated" : "corrupt: trailing data",
                      file_size_, header_.file_size);
  }
  if (header_.section_count > abi::kMaxSections) {
    return user_error("corrupt: {} sections", header_.section_count);
  }
  uint64_t table_bytes = uint64_t{header_.section_count} * sizeof(abi::SectionEntry);
  if (header_.section_table_offset > file_size_ ||
      table_bytes > file_size_ - header_.section_table_offset) {
    return user_error("corrupt: section table outside the file");
  }
  sections_.resize(header_.section_count);
  VOS_TRY(pread_all(fd_.get(), sections_.data(), table_bytes, header_.section_table_offset, path_),
          "reading section table");
  if (xxh3(sections_.data(), table_bytes) != header_.section_table_checksum) {
    return user_error("corrupt: section table checksum mismatch");
  }
  for (const auto& e : sections_) {
    if (e.offset % abi::kSectionAlign != 0 || e.offset > header_.section_table_offset ||
        e.size > header_.section_table_offset - e.offset) {
      return user_error("corrupt: section {} lies outside the file", section_name(e.type));
    }
  }
  return {};
}

const abi::SectionEntry* ImageReader::find(abi::SectionType type) const {
  auto it = std::find_if(sections_.begin(), sections_.end(),
                         [&](const auto& e) { return e.type == static_cast<uint32_t>(type); });
  return it == sections_.end() ? nullptr : &*it;
}

namespace {

// Hashing a mapping of the file reads the page cache in place; reading it into a buffer first
// cost four times as much CPU here, taken from the restore it runs beside.
std::optional<uint64_t> hash_mapped(int fd, uint64_t offset, uint64_t size) {
  auto m = MappedFile::map_readonly(fd);
  // A file cut short since it was opened would fault the hash (SIGBUS): let pread report it.
  if (!m || !m->contains(offset, size)) {
    return std::nullopt;
  }
  // Sections start page-aligned (checked when the image was opened).
  ::madvise(const_cast<char*>(m->data() + offset), size, MADV_SEQUENTIAL);
  return xxh3(m->data() + offset, size);
}

}  // namespace

Status ImageReader::verify_section(const abi::SectionEntry& e) const {
  constexpr uint64_t kMapAbove = 1 << 20;
  if (e.size >= kMapAbove) {
    if (auto h = hash_mapped(fd_.get(), e.offset, e.size)) {
      if (*h != e.checksum) {
        return user_error("corrupt: section '{}' checksum mismatch", section_name(e.type));
      }
      return {};
    }
  }
  Xxh3Stream st;
  std::vector<char> buf(std::min<uint64_t>(e.size, 8 << 20));
  uint64_t done = 0;
  Status result;
  while (done < e.size) {
    uint64_t n = std::min<uint64_t>(buf.size(), e.size - done);
    auto s = pread_all(fd_.get(), buf.data(), n, e.offset + done, path_);
    if (!s) {
      result = std::move(s).error();
      break;
    }
    st.update(buf.data(), n);
    done += n;
  }
  if (result && st.digest() != e.checksum) {
    result = user_error("corrupt: section '{}' checksum mismatch", section_name(e.type));
  }
  return result;
}

Status ImageReader::verify() const {
  for (const auto& e : sections_) {
    VOS_TRY(verify_section(e), "image {}", path_);
  }
  return {};
}

Result<std::string> ImageReader::read_section(abi::SectionType type) const {
  const abi::SectionEntry* e = find(type);
  if (e == nullptr) {
    return user_error("image {}: section '{}' missing", path_,
                      section_name(static_cast<uint32_t>(type)));
  }
  if (e->size > (1ull << 31)) {
    return user_error("image {}: section '{}' too large to load", path_, section_name(e->type));
  }
  std::string out(e->size, '\0');
  VOS_TRY(pread_all(fd_.get(), out.data(), e->size, e->offset, path_), "image {}", path_);
  if (xxh3(out.data(), out.size()) != e->checksum) {
    return user_error("image {}: corrupt: section '{}' checksum mismatch", path_,
                      section_name(e->type));
  }
  return out;
}

Status ImageReader::read_at(const abi::SectionEntry& e, uint64_t offset, void* out,
                            uint64_t size) const {
  if (offset > e.size || size > e.size - offset) {
    return user_error("image {}: reference [{}, +{}) outside section '{}'", path_, offset, size,
                      section_name(e.type));
  }
  return pread_all(fd_.get(), out, size, e.offset + offset, path_);
}

}  // namespace vos::image
