// e2e case (runs under vos, made for `vos restore --lazy`): a large heap region that the kernel
// merged with the mapping holding the thread's TLS, and with it the thread's rseq area, which
// the kernel writes on the way back to user space before anything can serve a missing page. This
// is where the first big malloc of a program lands when it allocates before starting threads:
// right below the anonymous mapping ld.so made for the main thread's TLS, same flags, so one
// mapping, one page run in the image. The restore may read only the rseq page(s) of it before
// the program runs (run_case.sh checks how fast it runs again and how many pages were in), the
// rest must still come back, every byte. A second thread has its stack and TLS inside memory
// the program asked huge pages for (see stack_thread).
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

static void fill(uint8_t* p, size_t len) {
  uint64_t* w = (uint64_t*)p;
  for (size_t i = 0; i < len / 8; i++) {
    w[i] = word_at((uintptr_t)(w + i));
  }
}

static void check(const char* what, const uint8_t* p, size_t len) {
  const uint64_t* w = (const uint64_t*)p;
  for (size_t i = 0; i < len / 8; i++) {
    uint64_t want = word_at((uintptr_t)(w + i));
    E2E_CHECK(w[i] == want, "%s: word %zu at %p is %#llx, want %#llx", what, i,
              (const void*)(w + i), (unsigned long long)w[i], (unsigned long long)want);
  }
}

static uintptr_t my_rseq(void) {
  return (uintptr_t)__builtin_thread_pointer() + (uintptr_t)__rseq_offset;
}

static uint32_t rseq_len(void) {
  return __rseq_size < 32 ? 32 : __rseq_size;  // what glibc registered
}

// Still registered at the same address: the kernel answers EBUSY to the same registration
// again, EINVAL to another address. The kernel writes into this very page.
static void check_rseq_registered(const char* who) {
  uintptr_t rseq = my_rseq();
  long r = syscall(SYS_rseq, (void*)rseq, rseq_len(), 0, RSEQ_SIG);
  E2E_CHECK(r == -1 && errno == EBUSY,
            "%s: rseq at %#lx: registering it again gave %ld (%s), want EBUSY", who,
            (unsigned long)rseq, r, strerror(errno));
}

// A thread whose stack, and with it its TLS and rseq area (glibc puts them at the top of a stack
// it is given), lies inside a region the program asked huge pages for, so that the 2 MiB block
// of the rseq page is wholly inside one mapping: reading that page before the program runs must
// fill a 4 KiB page only, or the kernel would make the whole block present, as zeros.
static const size_t kHugeRegion = 64u << 20;
static const size_t kStackAt = 30u << 20, kStackLen = 1u << 20;
static uint8_t* huge_region;
static pthread_barrier_t set_up, ready;

static void* stack_thread(void* arg) {
  (void)arg;
  uintptr_t rseq = my_rseq(), stack = (uintptr_t)huge_region + kStackAt;
  E2E_CHECK(stack <= rseq && rseq + rseq_len() <= stack + kStackLen,
            "thread: rseq at %#lx is not in the stack it was given (%#lx-%#lx)",
            (unsigned long)rseq, (unsigned long)stack, (unsigned long)(stack + kStackLen));
  pthread_barrier_wait(&set_up);
  pthread_barrier_wait(&ready);  // e2e_ready_time is set
  e2e_sleep_until(e2e_ready_time + 2.0);
  check_rseq_registered("thread");
  return NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 256;
  E2E_CHECK(mib >= 256, "heap of %zu MiB asked for; the case is about >= 256 MiB", mib);
  size_t len = mib << 20;
  E2E_CHECK(__rseq_size > 0, "glibc registered no rseq area (glibc.pthread.rseq=0?)");
  uintptr_t rseq = my_rseq();
  uintptr_t rseq_last = rseq + rseq_len() - 1;
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
  fill(heap, len);
  uintptr_t start = 0, end = 0;
  E2E_CHECK(mapping_of(rseq, &start, &end, perms), "rseq's mapping is gone");
  E2E_CHECK(start <= (uintptr_t)heap && (uintptr_t)heap + len <= end && rseq_last < end,
            "the kernel did not merge the heap %p-%p with the TLS mapping %#lx-%#lx: rseq at "
            "%#lx lies in %#lx-%#lx",
            (void*)heap, (void*)(heap + len), (unsigned long)tls_start, (unsigned long)tls_end,
            (unsigned long)rseq, (unsigned long)start, (unsigned long)end);
  tls_word = word_at((uintptr_t)&tls_word);

  uint8_t* raw = mmap(NULL, kHugeRegion + (2 << 20), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(raw != MAP_FAILED, "mmap: %s", strerror(errno));
  huge_region = (uint8_t*)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
  E2E_CHECK(madvise(huge_region, kHugeRegion, MADV_HUGEPAGE) == 0, "madvise: %s", strerror(errno));
  fill(huge_region, kStackAt);
  fill(huge_region + kStackAt + kStackLen, kHugeRegion - kStackAt - kStackLen);
  pthread_attr_t attr;
  pthread_t thread;
  E2E_CHECK(pthread_attr_init(&attr) == 0 &&
                pthread_attr_setstack(&attr, huge_region + kStackAt, kStackLen) == 0,
            "pthread_attr_setstack");
  pthread_barrier_init(&set_up, NULL, 2);
  pthread_barrier_init(&ready, NULL, 2);
  E2E_CHECK(pthread_create(&thread, &attr, stack_thread, NULL) == 0, "pthread_create");
  pthread_barrier_wait(&set_up);
  e2e_ready();
  pthread_barrier_wait(&ready);

  if (e2e_sabotage()) {
    heap[len / 2 + 12345] ^= 1;
  }
  e2e_sleep_until(e2e_ready_time + 2.0);
  check_rseq_registered("main thread");
  E2E_CHECK(tls_word == word_at((uintptr_t)&tls_word), "a TLS word changed");
  check("heap", heap, len);
  check("huge-page region below the stack", huge_region, kStackAt);
  check("huge-page region above the stack", huge_region + kStackAt + kStackLen,
        kHugeRegion - kStackAt - kStackLen);
  E2E_CHECK(pthread_join(thread, NULL) == 0, "pthread_join");
  E2E_CHECK(mapping_of(rseq, &start, &end, perms) && start <= (uintptr_t)heap &&
                (uintptr_t)heap + len <= end,
            "after the restore, heap %p-%p and rseq %#lx are not in one mapping (%#lx-%#lx)",
            (void*)heap, (void*)(heap + len), (unsigned long)rseq, (unsigned long)start,
            (unsigned long)end);
  e2e_pass();
}
