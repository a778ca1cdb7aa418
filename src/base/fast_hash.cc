#include "base/fast_hash.h"

#include "base/xxh3_kernels.h"

namespace vos {

namespace {

const xxh3_kernels::Kernels& kernels() {
  static const xxh3_kernels::Kernels& chosen =
      xxh3_uses_avx2() ? xxh3_kernels::kAvx2 : xxh3_kernels::kBaseline;
  return chosen;
}

}  // namespace

bool xxh3_uses_avx2() {
  // Also checks that the kernel saves AVX state (XGETBV), not only the CPUID bit.
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

uint64_t xxh3(const void* data, size_t size) {
  return kernels().hash(data, size);
}

void Xxh3Stream::reset() {
  kernels().reset(state_);
}

void Xxh3Stream::update(const void* data, size_t size) {
  kernels().update(state_, data, size);
}

uint64_t Xxh3Stream::digest() const {
  return kernels().digest(state_);
}

}  // namespace vos
