// XXH3-64, the checksum of image data, on the fastest vector unit this CPU has: page data is
// hashed on every checkpoint and restore. Debian's static libxxhash is built for baseline x86-64
// (SSE2) and has no run-time dispatch; the AVX2 kernel hashes 1 GiB in 26 ms here against 64 ms.
// Values are the same whichever kernel runs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vos {

// XXH3_64bits of `size` bytes.
uint64_t xxh3(const void* data, size_t size);

// Whether the AVX2 kernel is used here (the CPU has AVX2 and the kernel saves its state); the
// restorer's own copy of xxHash follows the same choice (RestoreArgs::hash_avx2).
bool xxh3_uses_avx2();

// Streaming XXH3_64bits: digest() equals xxh3() of everything update()d since reset().
class Xxh3Stream {
 public:
  static constexpr size_t kStateBytes = 640;  // XXH3_state_t is 576 bytes in xxHash 0.8

  Xxh3Stream() { reset(); }
  void reset();
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  alignas(64) unsigned char state_[kStateBytes];
};

}  // namespace vos
