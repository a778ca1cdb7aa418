// Host side (capture, restore, inspect).
#include "image/page_codec.h"

#include <lz4.h>
#include <zstd.h>

#include <cstring>

#include "base/fast_hash.h"

namespace vos::image {

namespace {

// Level 1: the fastest standard level; at checkpoint, time matters more than the last percent.
constexpr int kZstdLevel = 1;

// One compression and one decompression context per thread, reused for every frame (creating
// a zstd context costs far more than compressing a small frame).
struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};

ZstdContexts& zstd_contexts() {
  thread_local ZstdContexts ctx;
  return ctx;
}

}  // namespace

Result<abi::PageCodec> parse_codec(std::string_view name) {
  if (name == "none") {
    return abi::PageCodec::kNone;
  }
  if (name == "lz4") {
    return abi::PageCodec::kLz4;
  }
  if (name == "zstd") {
    return abi::PageCodec::kZstd;
  }
  return user_error("unknown compression '{}' (use zstd, lz4 or none)", name);
}

const char* codec_name(uint32_t codec) {
  switch (static_cast<abi::PageCodec>(codec)) {
    case abi::PageCodec::kNone:
      return "none";
    case abi::PageCodec::kLz4:
      return "lz4";
    case abi::PageCodec::kZstd:
      return "zstd";
  }
  return "unknown";
}

namespace {

// Compressed size of `n` bytes at `in` written to `out` (resized to fit), 0 if it failed.
size_t compress_into(abi::PageCodec want, const char* in, size_t n, std::vector<char>& out) {
  if (want == abi::PageCodec::kLz4 && n <= LZ4_MAX_INPUT_SIZE) {
    out.resize(static_cast<size_t>(LZ4_compressBound(static_cast<int>(n))));
    int r = LZ4_compress_default(in, out.data(), static_cast<int>(n), static_cast<int>(out.size()));
    return r > 0 ? static_cast<size_t>(r) : 0;
  }
  if (want == abi::PageCodec::kZstd) {
    out.resize(ZSTD_compressBound(n));
    size_t r = ZSTD_compressCCtx(zstd_contexts().c, out.data(), out.size(), in, n, kZstdLevel);
    return ZSTD_isError(r) ? 0 : r;
  }
  return 0;
}

// Random-looking memory (encrypted, already compressed, hashes) is common and gains nothing:
// compressing four 16 KiB samples spread over the frame costs 1/16 of the whole and tells it
// apart, so such a frame is stored plain without paying for a full compression. A frame whose
// samples miss its compressible parts is stored plain too; that costs size, never correctness.
constexpr size_t kSample = 16 << 10;
constexpr size_t kSamples = 4;

bool samples_incompressible(abi::PageCodec want, const char* in, size_t n,
                            std::vector<char>& scratch) {
  if (n < 2 * kSamples * kSample) {
    return false;  // small frame: just try it
  }
  size_t stored = 0;
  for (size_t i = 0; i < kSamples; ++i) {
    size_t got = compress_into(want, in + i * (n / kSamples), kSample, scratch);
    stored += got == 0 ? kSample : got;
  }
  return stored * 100 >= kSamples * kSample * 97;
}

}  // namespace

abi::PageCodec compress_frame(abi::PageCodec want, const char* in, size_t n,
                              std::vector<char>& out) {
  size_t got = 0;
  if (!samples_incompressible(want, in, n, out)) {
    got = compress_into(want, in, n, out);
  }
  if (got == 0 || got >= n) {
    out.clear();
    return abi::PageCodec::kNone;
  }
  out.resize(got);
  return want;
}

Status decompress_frame(const abi::PageFrame& f, const char* stored, char* out) {
  switch (static_cast<abi::PageCodec>(f.codec)) {
    case abi::PageCodec::kNone:
      if (f.stored_size != f.logical_size) {
        return user_error("corrupt: plain frame at {} stores {} bytes for {}", f.logical_offset,
                          f.stored_size, f.logical_size);
      }
      std::memcpy(out, stored, f.logical_size);
      break;
    case abi::PageCodec::kLz4: {
      int r = LZ4_decompress_safe(stored, out, static_cast<int>(f.stored_size),
                                  static_cast<int>(f.logical_size));
      if (r != static_cast<int>(f.logical_size)) {
        return user_error("corrupt: lz4 frame at {} does not decode", f.logical_offset);
      }
      break;
    }
    case abi::PageCodec::kZstd: {
      size_t r = ZSTD_decompressDCtx(zstd_contexts().d, out, f.logical_size, stored, f.stored_size);
      if (ZSTD_isError(r) || r != f.logical_size) {
        return user_error("corrupt: zstd frame at {} does not decode{}{}", f.logical_offset,
                          ZSTD_isError(r) ? ": " : "", ZSTD_isError(r) ? ZSTD_getErrorName(r) : "");
      }
      break;
    }
    default:
      return user_error("corrupt: frame at {} has unknown codec {}", f.logical_offset, f.codec);
  }
  return check_frame(f, out);
}

Status check_frame(const abi::PageFrame& f, const char* decoded) {
  if (xxh3(decoded, f.logical_size) != f.checksum) {
    return user_error("corrupt: frame at {} checksum mismatch", f.logical_offset);
  }
  return {};
}

}  // namespace vos::image
