// Restorer last stage (no libc): xxHash inlined for one instruction set, picked by the including
// file's target flags. Its one-shot XXH3 neither allocates nor calls into libc. Unaligned reads
// are done in place rather than through memcpy, which -fno-builtin would turn into calls.
#pragma once

#define XXH_INLINE_ALL
#define XXH_FORCE_MEMORY_ACCESS 1
#include <xxhash.h>
