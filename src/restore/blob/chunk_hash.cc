// Restorer last stage (no libc): see chunk_hash.h. This file is built for baseline x86-64.
#include "restore/blob/chunk_hash.h"

#include "restore/blob/chunk_hash_impl.h"

namespace vos::blob {

uint64_t chunk_hash(const void* data, uint64_t len, bool avx2) {
  return avx2 ? chunk_hash_avx2(data, len) : XXH3_64bits(data, len);
}

}  // namespace vos::blob
