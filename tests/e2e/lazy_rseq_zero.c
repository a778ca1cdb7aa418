// e2e case (runs under vos, made for `vos restore --lazy`): a thread's rseq area on a page that is
// all zeros at the checkpoint (the program registered it itself, on CPU 0, where every field the
// kernel writes is 0), between pages of data in the same mapping. vos stores no all-zero page, so
// the image has no data for it, yet the kernel writes it as soon as the restorer registers the
// area, before anything serves the lazy userfaultfd: the page must be there already (a zero
// page), or the restore waits forever.
#define _GNU_SOURCE  // before any libc header
#include <sched.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include "e2e_common.h"

enum { kPage = 4096, kPages = 64, kRseqPage = 37 };
static const uint64_t kSeed = 0x7273657130ULL;
static const char kNoRseq[] = "glibc.pthread.rseq=0";

static uint64_t word_at(uintptr_t where) {
  return e2e_mix(where ^ kSeed);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  // glibc registers an rseq area of its own in every thread; only one per thread is allowed.
  const char* tunables = getenv("GLIBC_TUNABLES");
  if (tunables == NULL || strcmp(tunables, kNoRseq) != 0) {
    setenv("GLIBC_TUNABLES", kNoRseq, 1);
    execv("/proc/self/exe", argv);
    e2e_fail("re-exec with %s: %s", kNoRseq, strerror(errno));
  }
  E2E_CHECK(__rseq_size == 0, "glibc registered an rseq area despite %s", kNoRseq);
  cpu_set_t cpu0;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  E2E_CHECK(sched_setaffinity(0, sizeof cpu0, &cpu0) == 0, "sched_setaffinity: %s",
            strerror(errno));
  uint8_t* m =
      mmap(NULL, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
  uint64_t* w = (uint64_t*)m;
  for (size_t i = 0; i < kPages * kPage / 8; i++) {
    w[i] = i / (kPage / 8) == kRseqPage ? 0 : word_at((uintptr_t)(w + i));
  }
  struct rseq* area = (struct rseq*)(m + kRseqPage * kPage);
  E2E_CHECK(syscall(SYS_rseq, area, 32, 0, RSEQ_SIG) == 0, "rseq: %s", strerror(errno));
  sched_yield();
  // Every byte of the page 0: the checkpoint stores no data for it.
  for (size_t i = 0; i < kPage; i++) {
    E2E_CHECK(((volatile uint8_t*)area)[i] == 0, "byte %zu of the rseq page is not 0 on CPU 0", i);
  }
  e2e_ready();

  if (e2e_sabotage()) {
    m[3 * kPage + 5] ^= 1;
  }
  e2e_sleep_until(e2e_ready_time + 2.0);
  long r = syscall(SYS_rseq, area, 32, 0, RSEQ_SIG);
  E2E_CHECK(r == -1 && errno == EBUSY, "rseq at %p: registering it again gave %ld (%s), want EBUSY",
            (void*)area, r, strerror(errno));
  for (size_t i = 0; i < kPages * kPage / 8; i++) {
    if (i / (kPage / 8) != kRseqPage) {
      E2E_CHECK(w[i] == word_at((uintptr_t)(w + i)), "word %zu at %p is %#llx, want %#llx", i,
                (void*)(w + i), (unsigned long long)w[i],
                (unsigned long long)word_at((uintptr_t)(w + i)));
    }
  }
  e2e_pass();
}
