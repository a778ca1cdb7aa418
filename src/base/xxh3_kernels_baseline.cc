#define VOS_XXH3_KERNELS kBaseline
#include "base/xxh3_kernels_impl.h"
