// Restorer last stage (no libc): XXH3-64, the checksum of the image format, for checking page
// data chunk by chunk as it is loaded.
#pragma once

#include <stdint.h>

namespace vos::blob {

// `avx2`: the front end found AVX2 usable (RestoreArgs::hash_avx2); 2.5x faster, same value.
uint64_t chunk_hash(const void* data, uint64_t len, bool avx2);

// Built with -mavx2 (chunk_hash_avx2.cc): only where AVX2 is usable.
uint64_t chunk_hash_avx2(const void* data, uint64_t len);

}  // namespace vos::blob
