// e2e case (runs under vos): every kind of memory a program has, filled before ready with a
// pattern derived from address (or file offset) and a per-region seed, compared byte for byte
// after the pause: brk heap, small and large malloc, small, 24 MiB dense (big enough for the
// restorer to split its loading between two threads) and 64 MiB sparse anonymous mmaps
// (holes must still read zero), a read-only region, PROT_NONE guards (protection checked in
// /proc/self/maps), a modified MAP_PRIVATE file mapping (file unchanged), MAP_SHARED|ANONYMOUS,
// thread stacks, __thread TLS, and a memfd seen both through a shared mapping and the fd.
#define _GNU_SOURCE  // before any libc header
#include <limits.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "e2e_common.h"

enum { kPage = 4096, kSmallAllocs = 512, kStackBytes = 16384, kThreads = 2 };
static const size_t kSparseBytes = 64u << 20;
static const size_t kDenseBytes = 24u << 20;
static const size_t kSparseStride = 64 * kPage;  // one touched page in 64

static uint8_t pattern(uintptr_t where, uint64_t seed) {
  return (uint8_t)(e2e_mix((where & ~(uintptr_t)7) ^ seed) >> ((where & 7) * 8));
}

// `base` is what the pattern is derived from: the address, or a file offset for file data.
static void fill(uint8_t* p, size_t len, uintptr_t base, uint64_t seed) {
  for (size_t i = 0; i < len; i++) {
    p[i] = pattern(base + i, seed);
  }
}

static void check(const char* what, const uint8_t* p, size_t len, uintptr_t base, uint64_t seed) {
  for (size_t i = 0; i < len; i++) {
    E2E_CHECK(p[i] == pattern(base + i, seed), "%s: byte %zu of %zu at %p is %#x, want %#x", what,
              i, len, (const void*)(p + i), p[i], pattern(base + i, seed));
  }
}

static void fill_here(void* p, size_t len, uint64_t seed) {
  fill(p, len, (uintptr_t)p, seed);
}
static void check_here(const char* what, const void* p, size_t len, uint64_t seed) {
  check(what, p, len, (uintptr_t)p, seed);
}

static void* map(size_t len, int prot, int flags, int fd) {
  void* p = mmap(NULL, len, prot, flags, fd, 0);
  E2E_CHECK(p != MAP_FAILED, "mmap %zu: %s", len, strerror(errno));
  return p;
}

// Finds the /proc/self/maps line covering [addr, addr+len); no malloc (the heap is under test).
static void check_maps(const char* what, const void* addr, size_t len, const char* perms,
                       const char* path) {
  static char buf[1 << 20];
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  size_t used = 0;
  ssize_t n;
  while (fd >= 0 && (n = read(fd, buf + used, sizeof buf - 1 - used)) > 0) {
    used += (size_t)n;
  }
  close(fd);
  buf[used] = '\0';
  uintptr_t a = (uintptr_t)addr;
  for (char* line = buf; *line != '\0';) {
    char* nl = strchr(line, '\n');
    if (nl != NULL) {
      *nl = '\0';
    }
    unsigned long start, end;
    char p[5];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &start, &end, p, &path_at) >= 3 && start <= a &&
        a < end) {
      E2E_CHECK(a + len <= end, "%s: split at %#lx in /proc/self/maps", what, end);
      E2E_CHECK(strcmp(p, perms) == 0, "%s: protection %s, want %s", what, p, perms);
      E2E_CHECK(path == NULL || (path_at > 0 && strcmp(line + path_at, path) == 0),
                "%s: maps to \"%s\", want \"%s\"", what, path_at > 0 ? line + path_at : "", path);
      return;
    }
    line = nl != NULL ? nl + 1 : line + strlen(line);
  }
  e2e_fail("%s: %p not in /proc/self/maps", what, addr);
}

static __thread uint8_t tls_buf[2048];

struct StackThread {
  int index;
  void* tls_addr;
  pthread_t thread;
};
static pthread_barrier_t barrier;

static void* stack_thread(void* arg) {
  struct StackThread* t = arg;
  uint8_t on_stack[kStackBytes];
  uint64_t seed = 0x57ac0000u + (uint64_t)t->index;
  fill_here(on_stack, sizeof on_stack, seed);
  fill_here(tls_buf, sizeof tls_buf, seed ^ 0x7150);
  t->tls_addr = tls_buf;
  pthread_barrier_wait(&barrier);  // filled
  pthread_barrier_wait(&barrier);  // after the pause
  check_here("thread stack", on_stack, sizeof on_stack, seed);
  E2E_CHECK(t->tls_addr == (void*)tls_buf, "thread %d TLS moved from %p to %p", t->index,
            t->tls_addr, (void*)tls_buf);
  check_here("thread TLS", tls_buf, sizeof tls_buf, seed ^ 0x7150);
  return NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);

  // brk heap, taken before malloc so the break belongs to us alone at first.
  const size_t brk_len = 256 * 1024;
  uint8_t* brk_mem = sbrk((intptr_t)brk_len);
  E2E_CHECK(brk_mem != (void*)-1, "sbrk: %s", strerror(errno));
  fill_here(brk_mem, brk_len, 0xb4c);

  uint8_t* small[kSmallAllocs];
  for (int i = 0; i < kSmallAllocs; i++) {
    size_t len = 1 + (size_t)(e2e_mix((uint64_t)i) % 400);
    small[i] = malloc(len);
    fill_here(small[i], len, 0x5a11 + (uint64_t)i);
  }
  const size_t big_len = (1u << 20) + 12345;  // above the mmap threshold
  uint8_t* big = malloc(big_len);
  fill_here(big, big_len, 0xb16);

  uint8_t* anon = map(4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  fill_here(anon, 4 * kPage, 0xa40);

  uint8_t* dense = map(kDenseBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  fill_here(dense, kDenseBytes, 0xde45e);

  uint8_t* sparse = map(kSparseBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  for (size_t off = 0; off < kSparseBytes; off += kSparseStride) {
    fill_here(sparse + off, kPage, 0x59a45e);
  }

  uint8_t* ro = map(3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  fill_here(ro, 3 * kPage, 0x40);
  E2E_CHECK(mprotect(ro, 3 * kPage, PROT_READ) == 0, "mprotect ro");

  // A guard page in the middle of a writable region, and a PROT_NONE reservation.
  uint8_t* guarded = map(4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
  fill_here(guarded, 4 * kPage, 0x6a4d);
  E2E_CHECK(mprotect(guarded + 2 * kPage, kPage, PROT_NONE) == 0, "mprotect guard");
  uint8_t* reserved = map(16 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);

  // File-backed MAP_PRIVATE: file pattern by offset; pages 1 and 2 (partly) modified in memory.
  char path[4096];
  snprintf(path, sizeof path, "%s/private.dat", e2e_dir);
  int file = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  static uint8_t file_data[4 * kPage];
  fill(file_data, sizeof file_data, 0, 0xf11e);
  E2E_CHECK(file >= 0 && pwrite(file, file_data, sizeof file_data, 0) == sizeof file_data,
            "write %s: %s", path, strerror(errno));
  uint8_t* priv = map(4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, file);
  close(file);
  char real_path[PATH_MAX];  // /proc/self/maps shows the resolved path
  E2E_CHECK(realpath(path, real_path) != NULL, "realpath %s", path);
  fill(priv + kPage, kPage, kPage, 0xd1e7);
  fill(priv + 2 * kPage, 100, 2 * kPage, 0xd1e7);

  uint8_t* shared = map(8 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
  fill_here(shared, 8 * kPage, 0x5a4ed);

  // memfd: first half written through the fd, second half through a shared mapping.
  const size_t memfd_len = 16 * kPage;
  int mfd = memfd_create("vos-e2e-memfd", MFD_CLOEXEC);
  E2E_CHECK(mfd >= 0 && ftruncate(mfd, (off_t)memfd_len) == 0, "memfd: %s", strerror(errno));
  static uint8_t memfd_data[16 * kPage];
  fill(memfd_data, memfd_len, 0, 0x3e3fd);
  E2E_CHECK(pwrite(mfd, memfd_data, memfd_len / 2, 0) == (ssize_t)memfd_len / 2, "memfd pwrite");
  uint8_t* mview = map(memfd_len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd);
  memcpy(mview + memfd_len / 2, memfd_data + memfd_len / 2, memfd_len / 2);

  pthread_barrier_init(&barrier, NULL, kThreads + 1);
  struct StackThread threads[kThreads];
  for (int i = 0; i < kThreads; i++) {
    threads[i].index = i;
    pthread_create(&threads[i].thread, NULL, stack_thread, &threads[i]);
  }
  fill_here(tls_buf, sizeof tls_buf, 0x7150);
  void* main_tls = tls_buf;
  pthread_barrier_wait(&barrier);
  // The kernel's break, not glibc's cached copy that sbrk(0) returns.
  void* brk_end = (void*)syscall(SYS_brk, 0);

  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    sparse[kSparseStride + 5 * kPage + 17] = 1;  // a hole that comes back with data
  }
  e2e_sleep_until(e2e_ready_time + 1.5);

  // The program break first: anything below may allocate.
  void* brk_now = (void*)syscall(SYS_brk, 0);
  E2E_CHECK(brk_now == brk_end, "program break moved from %p to %p", brk_end, brk_now);
  uint8_t* grown = sbrk(kPage);  // and it can still grow in place
  E2E_CHECK(grown == brk_end, "sbrk after restore returned %p, want %p", (void*)grown, brk_end);
  fill_here(grown, kPage, 0x6a0);
  check_here("grown brk", grown, kPage, 0x6a0);
  check_here("brk heap", brk_mem, brk_len, 0xb4c);
  for (int i = 0; i < kSmallAllocs; i++) {
    size_t len = 1 + (size_t)(e2e_mix((uint64_t)i) % 400);
    check_here("small malloc", small[i], len, 0x5a11 + (uint64_t)i);
  }
  check_here("large malloc", big, big_len, 0xb16);
  check_here("anonymous mmap", anon, 4 * kPage, 0xa40);
  check_here("dense mmap", dense, kDenseBytes, 0xde45e);
  static const uint8_t zero_page[kPage];
  for (size_t off = 0; off < kSparseBytes; off += kPage) {
    if (off % kSparseStride == 0) {
      check_here("sparse mmap, touched page", sparse + off, kPage, 0x59a45e);
    } else {
      E2E_CHECK(memcmp(sparse + off, zero_page, kPage) == 0,
                "sparse mmap: untouched page at offset %zu is not zero", off);
    }
  }
  check_here("read-only region", ro, 3 * kPage, 0x40);
  check_maps("read-only region", ro, 3 * kPage, "r--p", NULL);
  check_here("guarded region", guarded, 2 * kPage, 0x6a4d);
  check_here("guarded region", guarded + 3 * kPage, kPage, 0x6a4d);
  check_maps("guard page", guarded + 2 * kPage, kPage, "---p", NULL);
  check_maps("below guard page", guarded, 2 * kPage, "rw-p", NULL);
  check_maps("above guard page", guarded + 3 * kPage, kPage, "rw-p", NULL);
  check_maps("PROT_NONE reservation", reserved, 16 * kPage, "---p", NULL);
  check("private file map page 0", priv, kPage, 0, 0xf11e);
  check("private file map page 1", priv + kPage, kPage, kPage, 0xd1e7);
  check("private file map page 2", priv + 2 * kPage, 100, 2 * kPage, 0xd1e7);
  check("private file map page 2", priv + 2 * kPage + 100, kPage - 100, 2 * kPage + 100, 0xf11e);
  check("private file map page 3", priv + 3 * kPage, kPage, 3 * kPage, 0xf11e);
  check_maps("private file map", priv, 4 * kPage, "rw-p", real_path);
  file = open(path, O_RDONLY | O_CLOEXEC);
  static uint8_t reread[4 * kPage];
  E2E_CHECK(file >= 0 && pread(file, reread, sizeof reread, 0) == sizeof reread, "reread %s", path);
  check("file under the private map", reread, sizeof reread, 0, 0xf11e);
  check_here("MAP_SHARED|MAP_ANONYMOUS", shared, 8 * kPage, 0x5a4ed);
  check_maps("MAP_SHARED|MAP_ANONYMOUS", shared, 8 * kPage, "rw-s", NULL);
  check("main thread TLS", tls_buf, sizeof tls_buf, (uintptr_t)main_tls, 0x7150);
  E2E_CHECK(main_tls == (void*)tls_buf, "main TLS moved from %p to %p", main_tls, (void*)tls_buf);

  check("memfd mapping", mview, memfd_len, 0, 0x3e3fd);
  static uint8_t mread[16 * kPage];
  E2E_CHECK(pread(mfd, mread, memfd_len, 0) == (ssize_t)memfd_len, "memfd pread");
  check("memfd read", mread, memfd_len, 0, 0x3e3fd);
  // The mapping and the fd must still be one object: a store is visible to read and back.
  mview[5] ^= 0xff;
  uint8_t byte = 0;
  E2E_CHECK(pread(mfd, &byte, 1, 5) == 1 && byte == mview[5], "memfd map store not seen by fd");
  byte ^= 0x55;
  E2E_CHECK(pwrite(mfd, &byte, 1, 9) == 1 && mview[9] == byte, "memfd fd write not seen by map");
  check_maps("memfd mapping", mview, memfd_len, "rw-s", "/memfd:vos-e2e-memfd (deleted)");

  pthread_barrier_wait(&barrier);  // threads check their stacks and TLS
  for (int i = 0; i < kThreads; i++) {
    pthread_join(threads[i].thread, NULL);
  }
  // The allocator's own bookkeeping must have survived too.
  for (int i = 0; i < kSmallAllocs; i++) {
    free(small[i]);
  }
  free(big);
  void* again = malloc(1000);
  E2E_CHECK(again != NULL, "malloc after restore");
  free(again);
  e2e_pass();
}
