// e2e case (runs under vos, driven by incremental_moves.sh): memory the program moves with
// mremap between two incremental checkpoints, without writing it. The second image must not
// store it again: the write tracker follows the move, and the pages are inherited from the first
// image at their new addresses. On <dir>/move: moves a 32 MiB region elsewhere, then grows it
// by 8 MiB with a move (mremap MAYMOVE) and fills the new part; writes <dir>/moved. On <dir>/stop
// (after a restore): checks every word of both parts.
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>
#include <sys/stat.h>

#include "e2e_common.h"

static const size_t kMiB = 1u << 20;
static const size_t kOld = 32u << 20, kGrown = 40u << 20;

// Keyed by the offset in the region (not the address), so it stays right wherever it moves.
static uint64_t word(size_t offset, uint64_t seed) {
  return e2e_mix(offset ^ seed);
}

static int exists(const char* name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", e2e_dir, name);
  struct stat st;
  return stat(path, &st) == 0;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  uint64_t* r = mmap(NULL, kOld, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(r != MAP_FAILED, "mmap: %s", strerror(errno));
  // Somewhere to move to that nothing else takes meanwhile.
  void* spot = mmap(NULL, kOld, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(spot != MAP_FAILED, "mmap: %s", strerror(errno));
  for (size_t i = 0; i < kOld / 8; i++) {
    r[i] = word(i * 8, 1);
  }
  e2e_ready();
  while (!exists("move")) {
    struct timespec ts = e2e_ts(0.01);
    nanosleep(&ts, NULL);
  }
  r = mremap(r, kOld, kOld, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
  E2E_CHECK(r == spot, "mremap to %p: %s", spot, strerror(errno));
  r = mremap(r, kOld, kGrown, MREMAP_MAYMOVE);
  E2E_CHECK(r != MAP_FAILED, "mremap to grow: %s", strerror(errno));
  for (size_t i = kOld / 8; i < kGrown / 8; i++) {
    r[i] = word(i * 8, 2);
  }
  if (e2e_sabotage()) {
    r[kMiB / 8] ^= 1;
  }
  e2e_write_file("moved", "moved\n");
  while (!exists("stop")) {
    struct timespec ts = e2e_ts(0.01);
    nanosleep(&ts, NULL);
  }
  for (size_t i = 0; i < kGrown / 8; i++) {
    uint64_t want = word(i * 8, i < kOld / 8 ? 1 : 2);
    E2E_CHECK(r[i] == want, "word at offset %zu of the moved region is %#llx, want %#llx", i * 8,
              (unsigned long long)r[i], (unsigned long long)want);
  }
  e2e_pass();
}
