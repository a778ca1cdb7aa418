// Host side (vos restore). The libc-free last stage, embedded at build time (blob_embed.S).
#include <string>

#include "restore/restore.h"

extern "C" const char vos_blob_start[];
extern "C" const char vos_blob_end[];

namespace vos::restore {

const std::string& blob_code() {
  static const std::string code(vos_blob_start, vos_blob_end);
  return code;
}

}  // namespace vos::restore
