// Restorer last stage (no libc): XXH3-64, the checksum of the image format, for checking page
// data chunk by chunk as it is loaded.
#pragma once

#include <stdint.h>

namespace vos::blob {

uint64_t chunk_hash(const void* data, uint64_t len);

}  // namespace vos::blob
