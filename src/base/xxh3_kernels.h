// The XXH3 entry points compiled once per instruction set (see fast_hash.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vos::xxh3_kernels {

struct Kernels {
  uint64_t (*hash)(const void* data, size_t size);
  void (*reset)(void* state);
  void (*update)(void* state, const void* data, size_t size);
  uint64_t (*digest)(const void* state);
};

extern const Kernels kBaseline;  // xxh3_kernels_baseline.cc: what every x86-64 CPU runs
extern const Kernels kAvx2;      // xxh3_kernels_avx2.cc, built with -mavx2

}  // namespace vos::xxh3_kernels
