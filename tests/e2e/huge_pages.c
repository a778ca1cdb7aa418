// e2e case (runs under vos): memory a program asked huge pages for (MADV_HUGEPAGE, as databases
// and JVMs do) must be in huge pages again after a restore, as much of it as before: the program
// is right either way, but it would lose the speed it asked for.
// argv[2]: seconds the restored program may wait for them, since a lazy restore collapses the
// memory into huge pages only once all of it is in (0: they must be there at once).
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>

#include "e2e_common.h"

static const size_t kLen = 8u << 20;

// Root of the machine, not of a user namespace: process_madvise(MADV_COLLAPSE), which a lazy
// restore uses, needs CAP_SYS_NICE there.
static int machine_root(void) {
  FILE* f = fopen("/proc/self/uid_map", "r");
  unsigned long inside = 1, outside = 1, count = 0;
  int whole = f != NULL && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3 &&
              inside == 0 && outside == 0 && count == 4294967295UL;
  if (f != NULL) {
    fclose(f);
  }
  return whole && geteuid() == 0;
}

static void fill(char* mem, size_t from, size_t to) {
  for (size_t k = from; k < to; k += 64) {
    mem[k] = (char)(k / 64 * 7);
  }
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  double wait_s = argc > 2 ? atof(argv[2]) : 0;
  if (wait_s > 0 && !machine_root()) {
    e2e_skip("collapsing a lazily restored program's memory into huge pages needs root");
  }
  char* raw =
      mmap(NULL, kLen + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(raw != MAP_FAILED, "mmap");
  char* mem = (char*)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
  E2E_CHECK(madvise(mem, kLen, MADV_HUGEPAGE) == 0, "madvise: %s", strerror(errno));
  fill(mem, 0, kLen);
  long before = e2e_huge_kb(mem);
  if (before <= 0) {
    e2e_skip("the kernel gave this program no huge pages (transparent huge pages 'never'?)");
  }
  e2e_ready();
  if (e2e_sabotage()) {
    // What a restore that fills 4 KiB pages leaves: the same bytes, no huge pages.
    E2E_CHECK(madvise(mem, kLen, MADV_NOHUGEPAGE) == 0 && madvise(mem, kLen, MADV_DONTNEED) == 0,
              "sabotage");
    fill(mem, 0, kLen);
    E2E_CHECK(madvise(mem, kLen, MADV_HUGEPAGE) == 0, "sabotage");
  }
  e2e_sleep_until(e2e_ready_time + 1.0);
  double deadline = e2e_now() + wait_s;
  long after = e2e_huge_kb(mem);
  while (after < before && e2e_now() < deadline) {
    e2e_sleep_until(e2e_now() + 0.05);
    after = e2e_huge_kb(mem);
  }
  E2E_CHECK(after >= before, "%ld kB in huge pages after the restore, %ld kB before", after,
            before);
  for (size_t k = 0; k < kLen; k += 64) {
    E2E_CHECK(mem[k] == (char)(k / 64 * 7), "byte %zu changed", k);
  }
  e2e_pass();
}
