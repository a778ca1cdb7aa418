// Restorer last stage (no libc): see chunk_hash.h. xxHash is header-only when inlined; its
// one-shot XXH3 neither allocates nor calls into libc. Unaligned reads are done in place rather
// than through memcpy, which -fno-builtin would turn into calls.
#include "restore/blob/chunk_hash.h"

#define XXH_INLINE_ALL
#define XXH_FORCE_MEMORY_ACCESS 1
#include <xxhash.h>

namespace vos::blob {

uint64_t chunk_hash(const void* data, uint64_t len) {
  return XXH3_64bits(data, len);
}

}  // namespace vos::blob
