// Host side (capture).
#include "image/image_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace vos::image {

namespace {

Status make_private_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    return {};
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Error(ec.value(), fmt::format("creating image directory {}", dir.string()));
  }
  if (::chmod(dir.c_str(), 0700) != 0) {
    return sys_error("chmod 0700 {}", dir.string());
  }
  return {};
}

}  // namespace

std::vector<std::string> remove_dead_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir.empty() ? "." : dir, ec)) {
    std::string name = e.path().filename().string();
    auto at = name.rfind(".vos.tmp.");
    if (at == std::string::npos || !e.is_regular_file(ec)) {
      continue;
    }
    std::string digits = name.substr(at + 9);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    pid_t writer = static_cast<pid_t>(std::atol(digits.c_str()));
    char comm[32] = {};
    bool alive = false;
    if (int fd = ::open(fmt::format("/proc/{}/comm", writer).c_str(), O_RDONLY | O_CLOEXEC);
        fd >= 0) {
      ssize_t n = ::read(fd, comm, sizeof comm - 1);
      ::close(fd);
      alive = n > 0 && std::string(comm).rfind("vos", 0) == 0;
    }
    if (!alive && std::filesystem::remove(e.path(), ec)) {
      removed.push_back(e.path().string());
    }
  }
  return removed;
}

Result<ImageWriter> ImageWriter::create(const std::string& final_path, pid_t writer) {
  std::filesystem::path p(final_path);
  auto dir = p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path();
  VOS_TRY(make_private_dir(dir), "image {}", final_path);
  std::string temp = final_path + fmt::format(".tmp.{}", writer > 0 ? writer : ::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return sys_error("creating {}", temp);
  }
  ImageWriter w(final_path, temp, UniqueFd(fd));
  // Reserve the first page for the header; it is written last, once the table is known.
  static const char zero[abi::kSectionAlign] = {};
  VOS_TRY(w.write_raw(zero, sizeof zero), "writing header placeholder of {}", temp);
  return w;
}

Status ImageWriter::bypass_page_cache() {
  int fd = ::open(temp_path_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    return sys_error("opening {} for direct I/O", temp_path_);
  }
  direct_fd_ = UniqueFd(fd);
  return {};
}

ImageWriter::ImageWriter(std::string final_path, std::string temp_path, UniqueFd fd)
    : final_path_(std::move(final_path)), temp_path_(std::move(temp_path)), fd_(std::move(fd)) {}

ImageWriter::ImageWriter(ImageWriter&& o) noexcept
    : final_path_(std::move(o.final_path_)),
      temp_path_(std::move(o.temp_path_)),
      fd_(std::move(o.fd_)),
      direct_fd_(std::move(o.direct_fd_)),
      pos_(o.pos_),
      writeback_started_(o.writeback_started_),
      writeback_behind_(o.writeback_behind_),
      section_start_(o.section_start_),
      in_section_(o.in_section_),
      committed_(o.committed_),
      current_type_(o.current_type_),
      hash_(std::move(o.hash_)),
      table_(std::move(o.table_)),
      page_codec_(o.page_codec_),
      page_threads_(o.page_threads_),
      compressor_(std::move(o.compressor_)),
      has_frames_(o.has_frames_),
      pages_logical_(o.pages_logical_),
      pages_stored_(o.pages_stored_),
      page_counter_(o.page_counter_),
      cancel_flag_(o.cancel_flag_),
      chunk_hash_(std::move(o.chunk_hash_)),
      chunk_fill_(o.chunk_fill_),
      page_sums_(std::move(o.page_sums_)) {
  o.committed_ = true;  // the moved-from object must not unlink our file
}

ImageWriter::~ImageWriter() {
  compressor_.reset();  // joins its workers before the file goes
  if (!committed_ && !temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
  }
}

Status ImageWriter::check_cancelled() const {
  if (cancel_flag_ != nullptr && cancel_flag_->load(std::memory_order_relaxed)) {
    return Error(ECANCELED, "the checkpoint was called off (vos checkpoint is gone)");
  }
  return {};
}

Status ImageWriter::write_raw(const void* data, size_t size) {
  VOS_TRY(check_cancelled(), "writing {}", temp_path_);
  const char* p = static_cast<const char*>(data);
  // Straight from the caller's memory to the disk when it can be (bypass_page_cache()).
  bool direct = direct_fd_.valid() && reinterpret_cast<uintptr_t>(p) % kDirectAlign == 0 &&
                size % kDirectAlign == 0 && pos_ % kDirectAlign == 0;
  // Through the page cache at most 1 MiB per write(): a larger one makes it allocate 2 MiB
  // folios, which on a VM that reports free memory to its host (free page reporting) are the
  // blocks the host took back, so every page of them faults in the host first. Measured on
  // kernel 6.18 ext4: 256 MiB in 4 MiB writes 0.9-1.0 s, in 1 MiB writes 0.08 s. Direct writes
  // use no folios.
  size_t max_write = direct ? 4 << 20 : 1 << 20;
  int fd = direct ? direct_fd_.get() : fd_.get();
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, std::min(size, max_write), static_cast<off_t>(pos_));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EINVAL && direct) {
        // The file system wants other alignments for direct I/O (or took a short write): the
        // rest of the image goes through the page cache, as without bypass_page_cache().
        direct_fd_.reset();
        direct = false;
        max_write = 1 << 20;
        fd = fd_.get();
        continue;
      }
      return sys_error("writing {} at offset {}", temp_path_, pos_);
    }
    p += n;
    size -= static_cast<size_t>(n);
    pos_ += static_cast<uint64_t>(n);
  }
  if (!direct) {
    start_writeback();
  }
  return {};
}

void ImageWriter::start_writeback() {
  // Large enough for big sequential disk writes, small enough that the disk starts early.
  constexpr uint64_t kWritebackStep = 32 << 20;
  if (!writeback_behind_ || pos_ - writeback_started_ < kWritebackStep) {
    return;
  }
  uint64_t len = (pos_ - writeback_started_) / kWritebackStep * kWritebackStep;
  // Only a hint: if it fails, commit()'s fdatasync still writes everything.
  (void)::sync_file_range(fd_.get(), static_cast<off_t>(writeback_started_),
                          static_cast<off_t>(len), SYNC_FILE_RANGE_WRITE);
  writeback_started_ += len;
}

Status ImageWriter::pad_to_alignment() {
  static const char zero[abi::kSectionAlign] = {};
  uint64_t rem = pos_ % abi::kSectionAlign;
  if (rem == 0) {
    return {};
  }
  return write_raw(zero, abi::kSectionAlign - rem);
}

Status ImageWriter::begin_section(abi::SectionType type) {
  if (in_section_) {
    return user_error("image writer: section {} still open", static_cast<uint32_t>(current_type_));
  }
  if (table_.size() >= abi::kMaxSections) {
    return user_error("image writer: too many sections");
  }
  VOS_TRY(pad_to_alignment(), "aligning section");
  in_section_ = true;
  current_type_ = type;
  section_start_ = pos_;
  hash_->reset();
  if (type == abi::SectionType::kPages && page_codec_ != abi::PageCodec::kNone) {
    // The section checksum covers the stored (compressed) bytes, as for every other section:
    // the sink hashes exactly what reaches the file.
    compressor_ = std::make_unique<PageCompressor>(page_codec_, page_threads_,
                                                   [this](const void* data, size_t size) -> Status {
                                                     hash_->update(data, size);
                                                     return write_raw(data, size);
                                                   });
  }
  return {};
}

void ImageWriter::set_page_codec(abi::PageCodec codec, unsigned threads) {
  page_codec_ = codec;
  page_threads_ = threads;
}

uint64_t ImageWriter::section_position() const {
  return compressor_ ? compressor_->logical_size() : pos_ - section_start_;
}

Status ImageWriter::write(const void* data, size_t size) {
  if (!in_section_) {
    return user_error("image writer: write outside a section");
  }
  if (compressor_) {
    if (page_counter_ != nullptr && current_type_ == abi::SectionType::kPages) {
      page_counter_->fetch_add(size, std::memory_order_relaxed);
    }
    return compressor_->write(data, size);
  }
  hash_for_write(data, size);
  return write_hashed(data, size);
}

void ImageWriter::hash_for_write(const void* data, size_t size) {
  hash_->update(data, size);
  if (current_type_ == abi::SectionType::kPages) {
    hash_chunks(static_cast<const char*>(data), size);
  }
}

Status ImageWriter::write_hashed(const void* data, size_t size) {
  if (!in_section_ || compressor_) {
    return user_error("image writer: write_hashed outside a plain section");
  }
  if (page_counter_ != nullptr && current_type_ == abi::SectionType::kPages) {
    page_counter_->fetch_add(size, std::memory_order_relaxed);
  }
  return write_raw(data, size);
}

void ImageWriter::hash_chunks(const char* data, size_t size) {
  constexpr uint64_t kChunk = abi::kPageChecksumChunk;
  while (size > 0) {
    if (chunk_fill_ == 0 && size >= kChunk) {
      page_sums_.push_back(xxh3(data, kChunk));  // the usual case: whole chunks
      data += kChunk;
      size -= kChunk;
      continue;
    }
    if (chunk_fill_ == 0) {
      chunk_hash_->reset();
    }
    size_t n = std::min<uint64_t>(size, kChunk - chunk_fill_);
    chunk_hash_->update(data, n);
    chunk_fill_ += n;
    data += n;
    size -= n;
    if (chunk_fill_ == kChunk) {
      page_sums_.push_back(chunk_hash_->digest());
      chunk_fill_ = 0;
    }
  }
}

Status ImageWriter::write_page_checksums() {
  if (chunk_fill_ > 0) {
    page_sums_.push_back(chunk_hash_->digest());
    chunk_fill_ = 0;
  }
  abi::PageChecksumsHeader h{abi::kPageChecksumChunk, page_sums_.size()};
  std::vector<uint64_t> sums = std::move(page_sums_);
  page_sums_.clear();
  VOS_TRY(begin_section(abi::SectionType::kPageChecksums), "page checksums");
  VOS_TRY(write(&h, sizeof h), "page checksums");
  VOS_TRY(write(sums.data(), sums.size() * sizeof(uint64_t)), "page checksums");
  return end_section();
}

// Closes the compressed pages section, then writes its frame index as a section of its own.
Status ImageWriter::end_compressed_pages() {
  auto frames = compressor_->finish();
  if (!frames) {
    return std::move(frames).error();
  }
  pages_logical_ = compressor_->logical_size();
  compressor_.reset();
  abi::SectionEntry e{};
  e.type = static_cast<uint32_t>(abi::SectionType::kPages);
  e.offset = section_start_;
  e.size = pos_ - section_start_;
  e.checksum = hash_->digest();
  table_.push_back(e);
  in_section_ = false;
  pages_stored_ = e.size;

  abi::PageFramesHeader h{};
  h.logical_size = pages_logical_;
  h.frame_count = static_cast<uint32_t>(frames->size());
  h.codec = static_cast<uint32_t>(page_codec_);
  VOS_TRY(begin_section(abi::SectionType::kPageFrames), "page frame index");
  VOS_TRY(write(&h, sizeof h), "page frame index");
  VOS_TRY(write(frames->data(), frames->size() * sizeof(abi::PageFrame)), "page frame index");
  has_frames_ = true;
  return end_section();
}

Status ImageWriter::end_section() {
  if (!in_section_) {
    return user_error("image writer: no open section");
  }
  if (compressor_) {
    return end_compressed_pages();
  }
  abi::SectionEntry e{};
  e.type = static_cast<uint32_t>(current_type_);
  e.offset = section_start_;
  e.size = pos_ - section_start_;
  e.checksum = hash_->digest();
  table_.push_back(e);
  in_section_ = false;
  if (current_type_ == abi::SectionType::kPages) {
    pages_logical_ = pages_stored_ = e.size;
    return write_page_checksums();
  }
  return {};
}

Status ImageWriter::commit() {
  if (in_section_) {
    return user_error("image writer: commit with section open");
  }
  VOS_TRY(check_cancelled(), "committing {}", final_path_);
  VOS_TRY(pad_to_alignment(), "aligning section table");
  abi::ImageHeader h{};
  std::memcpy(h.magic, abi::kImageMagic, sizeof h.magic);
  // Plain images keep version 1 so that older vos versions still read them.
  h.version =
      std::max(min_version_, has_frames_ ? abi::kImageVersionFrames : abi::kImageVersionPlain);
  h.header_size = sizeof h;
  h.section_table_offset = pos_;
  h.section_count = static_cast<uint32_t>(table_.size());
  size_t table_bytes = table_.size() * sizeof(abi::SectionEntry);
  h.section_table_checksum = xxh3(table_.data(), table_bytes);
  VOS_TRY(write_raw(table_.data(), table_bytes), "writing section table");
  h.file_size = pos_;
  h.header_checksum = 0;
  h.header_checksum = xxh3(&h, sizeof h);
  if (::pwrite(fd_.get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
    return sys_error("writing header of {}", temp_path_);
  }
  if (::fdatasync(fd_.get()) != 0) {
    return sys_error("fdatasync {}", temp_path_);
  }
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return sys_error("renaming {} to {}", temp_path_, final_path_);
  }
  committed_ = true;
  std::filesystem::path dir = std::filesystem::path(final_path_).parent_path();
  UniqueFd dfd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) {
    ::fsync(dfd.get());  // make the rename itself durable
  }
  return {};
}

}  // namespace vos::image
