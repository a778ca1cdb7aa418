// Built with -mavx2 (src/CMakeLists.txt); only called where the CPU and kernel support AVX2.
#define VOS_XXH3_KERNELS kAvx2
#include "base/xxh3_kernels_impl.h"
