// e2e case (runs under vos): a program that writes its 32 MiB table as fast as it can, so a
// checkpoint that lets it run on while memory is written out (copy-on-write) is caught if the
// image mixes moments. Step n stores n + 1 in slot n % N, after checking that the slot still holds
// the previous lap's value. The loop counter lives in a register: in a consistent image every
// slot ahead of it holds an old value, while a page captured after the freeze holds values from
// the program's future, which the restored program meets within one lap.
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>

#include "e2e_common.h"

enum { kWords = 32 << 20 >> 3 };
static const uint64_t kLaps = 600;  // about 2.5 s here

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  uint64_t* table = mmap(NULL, kWords * sizeof *table, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(table != MAP_FAILED, "mmap");
  for (uint64_t n = 0; n < kLaps * kWords; n++) {
    uint64_t slot = n % kWords;
    uint64_t expect = n >= kWords ? n + 1 - kWords : 0;
    if (table[slot] != expect) {
      e2e_fail("step %llu: slot %llu holds %llu, expected %llu (a page from another moment)",
               (unsigned long long)n, (unsigned long long)slot, (unsigned long long)table[slot],
               (unsigned long long)expect);
    }
    table[slot] = n + 1;
    if (n == 2 * (uint64_t)kWords) {
      e2e_ready();
      if (e2e_sabotage()) {
        table[(slot + 4096) % kWords] = n + 4096 + 1;  // a value from the program's future
      }
    }
  }
  e2e_pass();
}
