// Host side (keeper's capture, vos restore, the new process). Reading, hashing and recreating
// the content of regular files: deleted files the image carries, and the files
// `vos restore --files=rewind` brings back to their state at the checkpoint.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "image/process_model.h"

namespace vos::fds {

// "/dir/name (deleted)" -> "/dir/name"; anything else as it is.
std::string without_deleted_suffix(const std::string& link);
// The directory a path names its file in ("/" for "/x").
std::string directory_of(const std::string& path);

// Reads exactly `size` bytes from offset 0 of `fd` into `out`; fails if the file is shorter.
Status read_prefix(int fd, char* out, uint64_t size);
// XXH3-64 of the first `size` bytes of `fd`, as 16 hex digits; fails if the file is shorter.
Result<std::string> hash_prefix(int fd, uint64_t size);
// The same of bytes in memory.
std::string hash_hex(std::string_view data);
// Writes all of `data` at offset `at` of `fd`.
Status write_all_at(int fd, std::string_view data, off_t at);

// A new empty file with no name in directory `dir`, open with `flags` (an access mode that
// writes, and status flags): O_TMPFILE (on the same filesystem as the original, so its fd reads
// "DIR/#INODE (deleted)"), or, where the filesystem has no O_TMPFILE, a file created under a
// fresh name there and unlinked at once.
Result<UniqueFd> create_unnamed(const std::string& dir, int flags);

// The fd whose entry holds the record (content, hash) of `f`'s file: the lowest fd, not a
// duplicate, of the same device and inode; `f` itself in images that recorded no device.
const image::FdState& file_record(const image::ProcessImage& p, const image::FdState& f);
// Whether any fd of `f`'s file was open for writing at the checkpoint.
bool file_written(const image::ProcessImage& p, const image::FdState& f);

}  // namespace vos::fds
