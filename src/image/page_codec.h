// Host side (capture, restore, inspect). Compressing and decompressing one frame of page data:
// the codec-specific part of compressed images, kept apart from threading and file layout.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "abi/image_abi.h"
#include "base/result.h"

namespace vos::image {

// "none", "lz4", "zstd" (the names `vos checkpoint --compress` takes).
Result<abi::PageCodec> parse_codec(std::string_view name);
const char* codec_name(uint32_t codec);  // "unknown" for a value no codec has

// Compresses `n` bytes at `in` into `out` (resized to the compressed size). Returns the codec
// the frame is to be stored with: kNone when compression would not save anything (random
// memory), so a frame never costs more than its plain size; then `in` itself is what to store
// and `out` holds nothing useful.
abi::PageCodec compress_frame(abi::PageCodec want, const char* in, size_t n,
                              std::vector<char>& out);

// Decodes a frame's stored bytes into `out` (f.logical_size bytes) and checks its checksum.
// Damaged input gives an error, never a crash or a short frame.
Status decompress_frame(const abi::PageFrame& f, const char* stored, char* out);
// Compares decoded bytes with the frame's checksum.
Status check_frame(const abi::PageFrame& f, const char* decoded);

}  // namespace vos::image
