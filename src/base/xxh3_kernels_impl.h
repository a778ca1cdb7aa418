// Body of one xxh3_kernels variant; the including file names it (VOS_XXH3_KERNELS) and sets the
// target flags. xxHash, inlined, picks its vector kernel from those flags, and its functions stay
// local to the including file, so the variants cannot clash.
#pragma once

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/fast_hash.h"
#include "base/xxh3_kernels.h"

namespace vos::xxh3_kernels {

static_assert(sizeof(XXH3_state_t) <= Xxh3Stream::kStateBytes, "Xxh3Stream too small");
static_assert(alignof(XXH3_state_t) <= 64, "Xxh3Stream under-aligned");

const Kernels VOS_XXH3_KERNELS = {
    [](const void* data, size_t size) -> uint64_t { return XXH3_64bits(data, size); },
    [](void* state) { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state)); },
    [](void* state, const void* data, size_t size) {
      XXH3_64bits_update(static_cast<XXH3_state_t*>(state), data, size);
    },
    [](const void* state) -> uint64_t {
      return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state));
    },
};

}  // namespace vos::xxh3_kernels
