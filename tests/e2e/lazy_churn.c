// e2e case (runs under vos, made for `vos restore --lazy`): the moment it finds its memory
// missing (a lazy restore: mincore says the last page is not resident), the program changes its
// memory map while the keeper is still copying pages in. It write-protects single pages (each
// splits a mapping inside one of the server's 2 MiB copy blocks), unmaps a range, moves one with
// mremap and discards one, starting where the background copy has not been yet. Then it checks
// every word: kept pages hold their pattern, the moved range holds the pattern of its old
// address, discarded pages read zero and the unmapped range is gone.
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>

#include "e2e_common.h"

enum { kPage = 4096 };
static const size_t kMiB = 1u << 20;
static const size_t kRegion = 256u << 20;
static const uint64_t kSeed = 0x6c617a79636875ULL;

static uint64_t word_at(uintptr_t where) {
  return e2e_mix(where ^ kSeed);
}

static void check_words(const char* what, const uint64_t* p, size_t len, uintptr_t pattern_base) {
  for (size_t i = 0; i < len / 8; i++) {
    uint64_t want = pattern_base == 0 ? 0 : word_at(pattern_base + i * 8);
    E2E_CHECK(p[i] == want, "%s: word %zu at %p is %#llx, want %#llx", what, i,
              (const void*)(p + i), (unsigned long long)p[i], (unsigned long long)want);
  }
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  uint8_t* r = mmap(NULL, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(r != MAP_FAILED, "mmap: %s", strerror(errno));
  // Where the moved range goes: reserved now, so that nothing else lands there.
  uint8_t* dest = mmap(NULL, 4 * kMiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(dest != MAP_FAILED, "mmap: %s", strerror(errno));
  uint64_t* words = (uint64_t*)r;
  for (size_t i = 0; i < kRegion / 8; i++) {
    words[i] = word_at((uintptr_t)(words + i));
  }
  e2e_ready();

  // Waits for the restore (the moment a page is missing); a direct run goes on after 3 s.
  if (!e2e_wait_lazy_restore(r + kRegion - kPage, e2e_ready_time)) {
    e2e_write_file("untested",
                   "its memory was all in at its first look: the map changed only "
                   "after the lazy server was done\n");
  }

  // Highest first: the background copy goes up from the lowest address.
  uint8_t* split = r + 200 * kMiB;
  for (int i = 0; i < 16; i++) {  // one read-only page in each of 16 copy blocks
    uint8_t* page = split + (size_t)i * 2 * kMiB + (size_t)(i + 1) * 3 * kPage;
    E2E_CHECK(mprotect(page, kPage, PROT_READ) == 0, "mprotect: %s", strerror(errno));
  }
  uint8_t* gone = r + 180 * kMiB + kMiB;
  E2E_CHECK(munmap(gone, 2 * kMiB) == 0, "munmap: %s", strerror(errno));
  uint8_t* moved = r + 150 * kMiB + 5 * kPage;
  E2E_CHECK(mremap(moved, 4 * kMiB, 4 * kMiB, MREMAP_MAYMOVE | MREMAP_FIXED, dest) == dest,
            "mremap: %s", strerror(errno));
  uint8_t* discarded = r + 120 * kMiB + 7 * kPage;
  E2E_CHECK(madvise(discarded, kMiB, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
  if (e2e_sabotage()) {
    r[100 * kMiB] ^= 1;
  }

  check_words("below the discarded range", words, (size_t)(discarded - r), (uintptr_t)r);
  check_words("discarded range", (const uint64_t*)discarded, kMiB, 0);
  uint8_t* after = discarded + kMiB;
  check_words("between discarded and moved", (const uint64_t*)after, (size_t)(moved - after),
              (uintptr_t)after);
  check_words("moved range", (const uint64_t*)dest, 4 * kMiB, (uintptr_t)moved);
  after = moved + 4 * kMiB;
  check_words("between moved and unmapped", (const uint64_t*)after, (size_t)(gone - after),
              (uintptr_t)after);
  unsigned char v;
  E2E_CHECK(mincore(gone, kPage, &v) == -1 && errno == ENOMEM, "unmapped range is mapped");
  after = gone + 2 * kMiB;
  check_words("above the unmapped range", (const uint64_t*)after, (size_t)(r + kRegion - after),
              (uintptr_t)after);
  e2e_pass();
}
