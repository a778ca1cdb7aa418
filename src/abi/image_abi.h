// On-disk layout of a vos image: shared by the writer (capture side), the reader (restore side)
// and `vos inspect`. Any change here bumps kImageVersion; docs/image-format.md is the contract.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vos::abi {

inline constexpr char kImageMagic[8] = {'V', 'O', 'S', 'I', 'M', 'G', '\r', '\n'};
// Version 2 added compressed page data (kPageFrames), version 3 POSIX timers in the metadata
// (`posix_timers`: an older vos would ignore the key and restore a program whose timer ids lead
// nowhere), version 4 file locks (`FdState.locks`: an older vos would restore a program that
// believes it holds locks nobody holds), version 5 System V shared memory (`sysv_shm` segments and
// `sysv-shm` mappings: an older vos would restore the program without the segments its ids name),
// version 6 deleted files (an fd's `deleted` and the `deleted-file` mapping kind: an older vos
// would reopen the "... (deleted)" name instead of recreating the file's content). An image is
// written with the lowest version that holds what it needs, so a plain one is still version 1,
// byte for byte as before, and an older vos keeps reading it; one that needs more is refused by
// version by an older vos instead of being misread.
inline constexpr uint32_t kImageVersion = 10;
inline constexpr uint32_t kImageVersionPlain = 1;   // oldest version read; no page frames
inline constexpr uint32_t kImageVersionFrames = 2;  // compressed page data
inline constexpr uint32_t kImageVersionPosixTimers = 3;
inline constexpr uint32_t kImageVersionFileLocks = 4;  // fds with file locks
inline constexpr uint32_t kImageVersionSysvShm = 5;
inline constexpr uint32_t kImageVersionDeletedFiles = 6;
// Descriptor kinds an older vos would read as another kind (nlohmann maps an unknown name to
// the first): unix sockets whose peer is closed.
inline constexpr uint32_t kImageVersionOrphanSockets = 7;
// A process tree: the top-level process lists the others (`processes`), fds share descriptions
// across them (`tree_desc`); and socketpairs (`unix-pair` fds).
inline constexpr uint32_t kImageVersionTrees = 8;
// The program's vos pty: `console` fds and ProcessImage::console.
inline constexpr uint32_t kImageVersionConsole = 9;
// System V semaphore sets and message queues (`sysv_sem`, `sysv_msg`): an older vos would restore
// the program without them; and `fifo` fds (an older vos would refuse the kind as corrupt).
inline constexpr uint32_t kImageVersionSysvSemMsg = 10;
inline constexpr uint32_t kImageVersionFifos = 10;
// Helpers for ended group and session leaders (ProcessImage::helper).
inline constexpr uint32_t kImageVersionLeaderHelpers = 10;
inline constexpr uint64_t kPageSize = 4096;
// Sections start on this boundary so page data can be mmap()ed straight from the file.
inline constexpr uint64_t kSectionAlign = 4096;
inline constexpr uint32_t kMaxSections = 64;

enum class SectionType : uint32_t {
  kMeta = 1,   // JSON document describing the process (see docs/image-format.md)
  kBlobs = 2,  // raw bytes referenced from the JSON by {offset,size}: registers, pipe data...
  kPages = 3,  // memory pages, 4 KiB each, referenced by page runs in the JSON; with kPageFrames
               // the section holds compressed frames of that logical page stream instead
  kPageFrames = 4,  // index of the frames of a compressed pages section (version 2)
  // XXH3-64 of each chunk of a plain pages section, so that restore can check page data piece
  // by piece (while each piece is in cache) instead of in one pass over the whole section.
  // Optional: readers that do not know it ignore it (an image keeps version 1 with it).
  kPageChecksums = 5,
};

// The kPageChecksums section: this header, then `count` uint64_t checksums; checksum i covers
// bytes [i * chunk_size, min((i + 1) * chunk_size, size)) of the pages section.
struct PageChecksumsHeader {
  uint64_t chunk_size;  // a multiple of kPageSize
  uint64_t count;       // ceil(pages section size / chunk_size)
};
static_assert(sizeof(PageChecksumsHeader) == 16);
inline constexpr uint64_t kPageChecksumChunk = 256 << 10;  // fits a core's L2 cache

// How one frame of page data is stored.
enum class PageCodec : uint32_t {
  kNone = 0,  // stored as is (also used for a frame that did not get smaller)
  kLz4 = 1,   // LZ4 block format (LZ4_compress_default / LZ4_decompress_safe)
  kZstd = 2,  // one zstd frame (ZSTD_compressCCtx / ZSTD_decompressDCtx)
};

// The kPageFrames section: this header, then `frame_count` PageFrame entries. The frames cover
// the logical page stream [0, logical_size) in order, without gaps.
struct PageFramesHeader {
  uint64_t logical_size;  // bytes of page data before compression; PageRun offsets index this
  uint32_t frame_count;
  uint32_t codec;  // PageCodec requested at checkpoint (informational; each frame says its own)
};
static_assert(sizeof(PageFramesHeader) == 16);

struct PageFrame {
  uint64_t logical_offset;  // where the frame's data starts in the logical page stream
  uint64_t stored_offset;   // where its stored bytes start, relative to the pages section
  uint32_t logical_size;    // at most kMaxFrameLogical
  uint32_t stored_size;
  uint32_t codec;     // PageCodec
  uint32_t reserved;  // 0
  uint64_t checksum;  // XXH3-64 of the frame's logical (decompressed) bytes
};
static_assert(sizeof(PageFrame) == 40);
// Readers refuse larger frames, so a corrupt index cannot make them allocate without bound.
inline constexpr uint32_t kMaxFrameLogical = 16u << 20;

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
