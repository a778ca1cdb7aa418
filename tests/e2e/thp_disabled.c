// e2e case (runs under vos): a program that turned transparent huge pages off for itself
// (prctl PR_SET_THP_DISABLE, as some databases do) must find them off after a restore, and its
// memory, which asked for huge pages with madvise, must not have been restored into them.
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>
#include <sys/prctl.h>

#include "e2e_common.h"

static const size_t kLen = 8u << 20;

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  E2E_CHECK(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "PR_SET_THP_DISABLE: %s", strerror(errno));
  char* raw =
      mmap(NULL, kLen + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(raw != MAP_FAILED, "mmap");
  char* mem = (char*)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
  E2E_CHECK(madvise(mem, kLen, MADV_HUGEPAGE) == 0, "madvise: %s", strerror(errno));
  for (size_t k = 0; k < kLen; k += 64) {
    mem[k] = (char)(k / 64);
  }
  E2E_CHECK(e2e_huge_kb(mem) == 0, "huge pages before the restore: %ld kB", e2e_huge_kb(mem));
  e2e_ready();
  if (e2e_sabotage()) {
    E2E_CHECK(prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0) == 0, "sabotage");
  }
  e2e_sleep_until(e2e_ready_time + 1.0);
  E2E_CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "huge pages are on again after restore");
  E2E_CHECK(e2e_huge_kb(mem) == 0, "restored into %ld kB of huge pages", e2e_huge_kb(mem));
  for (size_t k = 0; k < kLen; k += 64) {
    E2E_CHECK(mem[k] == (char)(k / 64), "byte %zu changed", k);
  }
  e2e_pass();
}
