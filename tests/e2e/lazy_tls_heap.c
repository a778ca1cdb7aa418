// e2e case (runs under vos, made for `vos restore --lazy`): a large heap region that the kernel
// merged with the mapping holding the thread's TLS, and with it the thread's rseq area, which
// the kernel writes on the way back to user space without waiting for a missing page. This is
// where the first big malloc of a program lands when it allocates before starting threads: right
// below the anonymous mapping ld.so made for the main thread's TLS, same flags, so one mapping,
// one page run in the image. The restore may read only the rseq page(s) of it before the program
// runs (run_case.sh checks how fast it runs again), the rest must still come back, every byte.
// argv[2]: heap size in MiB (default 256; at least 256).
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include "e2e_common.h"

enum { kPage = 4096 };
static const uint64_t kSeed = 0x746c7368656170ULL;

static __thread uint64_t tls_word = 0x1234567890abcdefULL;

static uint64_t word_at(uintptr_t where) {
  return e2e_mix(where ^ kSeed);
}

// The mapping of /proc/self/maps that holds `addr`: [*start, *end); 0 if none does.
static int mapping_of(uintptr_t addr, uintptr_t* start, uintptr_t* end, char* perms) {
  FILE* f = fopen("/proc/self/maps", "r");
  E2E_CHECK(f != NULL, "open /proc/self/maps: %s", strerror(errno));
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long s = 0, e = 0;
    if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) == 3 && s <= addr && addr < e) {
      *start = s;
      *end = e;
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static void check_heap(const uint64_t* heap, size_t len) {
  for (size_t i = 0; i < len / 8; i++) {
    uint64_t want = word_at((uintptr_t)(heap + i));
    E2E_CHECK(heap[i] == want, "heap word %zu at %p is %#llx, want %#llx", i,
              (const void*)(heap + i), (unsigned long long)heap[i], (unsigned long long)want);
  }
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 256;
  E2E_CHECK(mib >= 256, "heap of %zu MiB asked for; the case is about >= 256 MiB", mib);
  size_t len = mib << 20;
  E2E_CHECK(__rseq_size > 0, "glibc registered no rseq area (glibc.pthread.rseq=0?)");
  uintptr_t rseq = (uintptr_t)__builtin_thread_pointer() + (uintptr_t)__rseq_offset;
  uintptr_t rseq_last = rseq + (__rseq_size < 32 ? 32 : __rseq_size) - 1;
  uintptr_t tls_start = 0, tls_end = 0;
  char perms[8] = "";
  E2E_CHECK(mapping_of(rseq, &tls_start, &tls_end, perms), "no mapping holds rseq at %#lx",
            (unsigned long)rseq);
  E2E_CHECK(strcmp(perms, "rw-p") == 0, "rseq at %#lx lies in a %s mapping", (unsigned long)rseq,
            perms);

  // Right below the TLS mapping (where malloc's mmap would land), else right above it.
  uint8_t* heap = MAP_FAILED;
  uintptr_t tries[2] = {tls_start - len, tls_end};
  for (int i = 0; i < 2 && heap == MAP_FAILED; i++) {
    heap = mmap((void*)tries[i], len, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  }
  E2E_CHECK(heap != MAP_FAILED, "no room for %zu MiB next to the TLS mapping %#lx-%#lx: %s", mib,
            (unsigned long)tls_start, (unsigned long)tls_end, strerror(errno));
  uint64_t* words = (uint64_t*)heap;
  for (size_t i = 0; i < len / 8; i++) {
    words[i] = word_at((uintptr_t)(words + i));
  }
  uintptr_t start = 0, end = 0;
  E2E_CHECK(mapping_of(rseq, &start, &end, perms), "rseq's mapping is gone");
  E2E_CHECK(start <= (uintptr_t)heap && (uintptr_t)heap + len <= end && rseq_last < end,
            "the kernel did not merge the heap %p-%p with the TLS mapping %#lx-%#lx: rseq at "
            "%#lx lies in %#lx-%#lx",
            (void*)heap, (void*)(heap + len), (unsigned long)tls_start, (unsigned long)tls_end,
            (unsigned long)rseq, (unsigned long)start, (unsigned long)end);
  tls_word = word_at((uintptr_t)&tls_word);
  e2e_ready();

  if (e2e_sabotage()) {
    heap[len / 2 + 12345] ^= 1;
  }
  e2e_sleep_until(e2e_ready_time + 2.0);
  // Still registered at the same address (the kernel answers EBUSY for the same registration
  // again, EINVAL for another address): the kernel writes into this very page.
  long r = syscall(SYS_rseq, (void*)rseq, (uint32_t)(rseq_last + 1 - rseq), 0, RSEQ_SIG);
  E2E_CHECK(r == -1 && errno == EBUSY,
            "rseq at %#lx: registering it again gave %ld (%s), want EBUSY", (unsigned long)rseq, r,
            strerror(errno));
  E2E_CHECK(tls_word == word_at((uintptr_t)&tls_word), "a TLS word changed");
  check_heap(words, len);
  E2E_CHECK(mapping_of(rseq, &start, &end, perms) && start <= (uintptr_t)heap &&
                (uintptr_t)heap + len <= end,
            "after the restore, heap %p-%p and rseq %#lx are not in one mapping (%#lx-%#lx)",
            (void*)heap, (void*)(heap + len), (unsigned long)rseq, (unsigned long)start,
            (unsigned long)end);
  e2e_pass();
}
