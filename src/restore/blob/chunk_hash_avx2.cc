// Restorer last stage (no libc): see chunk_hash.h. Built with -mavx2.
#include "restore/blob/chunk_hash.h"
#include "restore/blob/chunk_hash_impl.h"

namespace vos::blob {

uint64_t chunk_hash_avx2(const void* data, uint64_t len) {
  return XXH3_64bits(data, len);
}

}  // namespace vos::blob
