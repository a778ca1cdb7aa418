// Unit tests of vos's XXH3 dispatch: whichever kernel runs, checksums are the values xxHash's own
// library computes, so images stay readable by any vos on any CPU.
#include "base/fast_hash.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <string>

#include "base/xxh3_kernels.h"

namespace vos {
namespace {

std::string sample(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>(i * 131 + i / 4096 + 7);
  }
  return data;
}

// Short inputs, the stripe and block edges of XXH3 (64, 1024 bytes) and a multi-block size.
const size_t kSizes[] = {0, 1, 16, 17, 128, 129, 240, 241, 1023, 1024, 1025, 4096, 262144 + 77};

TEST(FastHash, OneShotMatchesLibrary) {
  for (size_t size : kSizes) {
    std::string data = sample(size);
    EXPECT_EQ(xxh3(data.data(), size), XXH3_64bits(data.data(), size)) << size << " bytes";
  }
}

TEST(FastHash, StreamMatchesLibraryWhateverThePieces) {
  std::string data = sample(300000);
  for (size_t piece : {1ul, 63ul, 64ul, 1000ul, 4096ul, 65537ul}) {
    Xxh3Stream s;
    for (size_t at = 0; at < data.size(); at += piece) {
      s.update(data.data() + at, std::min(piece, data.size() - at));
    }
    EXPECT_EQ(s.digest(), XXH3_64bits(data.data(), data.size())) << "pieces of " << piece;
    s.reset();
    s.update(data.data(), 100);
    EXPECT_EQ(s.digest(), XXH3_64bits(data.data(), 100)) << "after reset";
  }
}

TEST(FastHash, BothKernelsAgree) {
  if (!__builtin_cpu_supports("avx2")) {
    GTEST_SKIP() << "this CPU has no AVX2: only the baseline kernel can run";
  }
  for (size_t size : kSizes) {
    std::string data = sample(size);
    EXPECT_EQ(xxh3_kernels::kAvx2.hash(data.data(), size),
              xxh3_kernels::kBaseline.hash(data.data(), size))
        << size << " bytes";
  }
}

}  // namespace
}  // namespace vos
