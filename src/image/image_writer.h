// Host side (capture). Writes an image file section by section; the image only appears under its
// final name after commit(), so a crash or kill -9 mid-checkpoint never leaves a half image.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "abi/image_abi.h"
#include "base/fast_hash.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "image/page_compressor.h"

namespace vos::image {

// Removes the temporary images in `dir` that were left by a writer that died (its pid is gone,
// or is no longer a vos process); returns their names.
std::vector<std::string> remove_dead_temporaries(const std::string& dir);

class ImageWriter {
 public:
  // Creates `final_path`'s directory (mode 0700) if missing and a temporary file beside it (0600),
  // named `final_path`.tmp.`writer` (the writing process's host pid, so that whoever finds the
  // file can tell whether its writer still lives: see remove_dead_temporaries).
  static Result<ImageWriter> create(const std::string& final_path, pid_t writer = 0);

  ImageWriter(ImageWriter&&) noexcept;
  ImageWriter& operator=(ImageWriter&&) = delete;
  ~ImageWriter();  // removes the temporary file unless committed

  // Compress the pages section from now on: its data goes through a PageCompressor (`threads`
  // workers, 0 = one per CPU) and end_section() adds a kPageFrames index after it. kNone (the
  // default) stores pages as they are, in a version-1 image. Call before begin_section(kPages).
  void set_page_codec(abi::PageCodec codec, unsigned threads = 0);

  // The image holds something only readers of `version` or later understand (see
  // abi::kImageVersion): its header says at least that.
  void require_version(uint32_t version) { min_version_ = std::max(min_version_, version); }

  Status begin_section(abi::SectionType type);
  Status write(const void* data, size_t size);
  // write() in two steps, for a caller that checksums on one thread and writes on another (the
  // checksums are half the CPU work of a write): hash_for_write() takes data into the open
  // section's checksums, in the order it will be written; write_hashed() then writes it. Only
  // while can_split_writes(): a compressed section checksums what the compressor stores.
  bool can_split_writes() const { return in_section_ && !compressor_; }
  void hash_for_write(const void* data, size_t size);
  Status write_hashed(const void* data, size_t size);
  // Bytes written so far in the open section: the offset the next write() lands at. For a
  // compressed pages section, the logical (uncompressed) offset, which page runs refer to.
  uint64_t section_position() const;
  Status end_section();
  // Writes the section table and header, fsyncs, renames to the final name, fsyncs the directory.
  Status commit();

  // From now on, writes of whole pages from page-aligned memory at page-aligned offsets (page
  // data, normally) go straight to the disk (O_DIRECT), not through the page cache: a large
  // image then neither fills memory nor pushes other files' pages out of the cache. Fails if the
  // file system refuses O_DIRECT; the writer then goes on as before.
  Status bypass_page_cache();
  bool bypasses_page_cache() const { return direct_fd_.valid(); }

  // Starts the disk writes of what was written so far, every kWritebackStep bytes, so that the
  // fdatasync in commit() finds little left to do (it otherwise waits for the whole image).
  // On by default; turn it off while the program is stopped, since starting writes can block.
  void set_writeback_behind(bool on) { writeback_behind_ = on; }

  uint64_t bytes_written() const { return pos_; }
  // Adds the bytes of every page data write (as in memory, before any compression) to
  // `*counter`, which another thread may read to show progress. Null: none.
  void count_page_bytes_in(std::atomic<uint64_t>* counter) { page_counter_ = counter; }
  // Once `*flag` is set (by another thread), every write and commit() fails with ECANCELED, so
  // the image is never committed. Null: never.
  void cancel_when(const std::atomic<bool>* flag) { cancel_flag_ = flag; }
  // Page data before and after compression (equal without a codec).
  uint64_t pages_logical_bytes() const { return pages_logical_; }
  uint64_t pages_stored_bytes() const { return pages_stored_; }
  const std::string& final_path() const { return final_path_; }

 private:
  ImageWriter(std::string final_path, std::string temp_path, UniqueFd fd);
  Status pad_to_alignment();
  Status write_raw(const void* data, size_t size);
  Status check_cancelled() const;
  Status end_compressed_pages();
  void start_writeback();
  // Plain pages section: per-chunk checksums, written as a kPageChecksums section after it.
  void hash_chunks(const char* data, size_t size);
  Status write_page_checksums();

  std::string final_path_;
  std::string temp_path_;
  UniqueFd fd_;
  UniqueFd direct_fd_;  // the same file opened O_DIRECT, after bypass_page_cache()
  static constexpr uint64_t kDirectAlign = 4096;
  uint64_t pos_ = 0;
  uint64_t writeback_started_ = 0;  // bytes before this offset were handed to the disk
  bool writeback_behind_ = true;
  uint64_t section_start_ = 0;
  bool in_section_ = false;
  bool committed_ = false;
  abi::SectionType current_type_{};
  std::unique_ptr<Xxh3Stream> hash_ = std::make_unique<Xxh3Stream>();  // the open section
  std::vector<abi::SectionEntry> table_;
  abi::PageCodec page_codec_ = abi::PageCodec::kNone;
  unsigned page_threads_ = 0;
  // Only while a compressed pages section is open; its sink points at this writer, which is
  // therefore never moved then (create() moves it before any section exists).
  std::unique_ptr<PageCompressor> compressor_;
  bool has_frames_ = false;  // the image needs version 2
  uint32_t min_version_ = abi::kImageVersionPlain;
  uint64_t pages_logical_ = 0;
  uint64_t pages_stored_ = 0;
  std::atomic<uint64_t>* page_counter_ = nullptr;
  const std::atomic<bool>* cancel_flag_ = nullptr;
  std::unique_ptr<Xxh3Stream> chunk_hash_ = std::make_unique<Xxh3Stream>();
  uint64_t chunk_fill_ = 0;  // bytes of the current chunk hashed so far
  std::vector<uint64_t> page_sums_;
};

}  // namespace vos::image
