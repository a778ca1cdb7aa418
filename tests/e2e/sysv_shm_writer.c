// e2e case (runs under vos): cow_writer's table in a System V shared memory segment. A live
// checkpoint copies private memory while the program runs and a copy-on-write snapshot does not
// freeze shared memory, so the segment must be read while the program is stopped: step n stores
// n + 1 in slot n % N after checking that the slot still holds the previous lap's value, with the
// loop counter in a register, and a segment read at another moment than the registers holds
// values the restored program finds too old or from its future within one lap.
#define _GNU_SOURCE  // before any libc header
#include <sys/ipc.h>
#include <sys/shm.h>

#include "e2e_common.h"

enum { kWords = 8 << 20 >> 3 };
static const uint64_t kLaps = 1200;  // about 1.5 s of CPU here

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  int id = shmget(IPC_PRIVATE, kWords * sizeof(uint64_t), IPC_CREAT | 0600);
  E2E_CHECK(id >= 0, "shmget: %s", strerror(errno));
  uint64_t* table = shmat(id, NULL, 0);
  E2E_CHECK(table != (void*)-1, "shmat: %s", strerror(errno));
  // Gone with the program, even if it fails (a direct run shares the machine's namespace).
  E2E_CHECK(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID: %s", strerror(errno));
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
