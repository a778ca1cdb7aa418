// e2e case (runs under vos): madvise() state the kernel keeps per mapping must survive a restore,
// since it changes what the program sees later: MADV_WIPEONFORK / MADV_DONTFORK decide what a
// child gets, MADV_DONTDUMP what a core dump holds, MADV_HUGEPAGE / MADV_NOHUGEPAGE how memory is
// backed. Each mapping is filled with a pattern and checked too (a huge-page mapping is restored
// with huge pages where the kernel gives them; the read-only one must be read-only again after
// the restorer filled it).
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>

#include "e2e_common.h"

enum { kLen = 4 << 20 };

struct advised {
  const char* name;
  int advice;
  const char* flag;  // as /proc/self/smaps VmFlags shows it
  char* mem;
  int read_only;
};

static struct advised areas[] = {
    {"hugepage", MADV_HUGEPAGE, "hg", NULL, 0},
    {"nohugepage", MADV_NOHUGEPAGE, "nh", NULL, 0},
    {"dontfork", MADV_DONTFORK, "dc", NULL, 0},
    {"dontdump", MADV_DONTDUMP, "dd", NULL, 0},
    {"wipeonfork", MADV_WIPEONFORK, "wf", NULL, 0},
    {"hugepage read-only", MADV_HUGEPAGE, "hg", NULL, 1},
};
enum { kAreas = sizeof areas / sizeof areas[0] };

// The VmFlags line of the mapping starting at `addr`, or "" if there is none.
static void vm_flags_of(const void* addr, char* out, size_t size) {
  FILE* f = fopen("/proc/self/smaps", "r");
  E2E_CHECK(f != NULL, "open smaps");
  char line[512];
  int in = 0;
  out[0] = '\0';
  while (fgets(line, sizeof line, f)) {
    unsigned long start = 0;
    if (sscanf(line, "%lx-", &start) == 1 && strchr(line, '-') && strchr(line, ' ') &&
        strchr(line, '-') < strchr(line, ' ')) {
      in = start == (unsigned long)addr;
    } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
      snprintf(out, size, "%s ", line + 8);
      break;
    }
  }
  fclose(f);
}

static int has_flag(const char* flags, const char* flag) {
  char want[8];
  snprintf(want, sizeof want, " %s ", flag);
  return strstr(flags, want) != NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  for (int i = 0; i < kAreas; i++) {
    // 2 MiB aligned, so that huge pages are possible.
    char* raw =
        mmap(NULL, kLen + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    E2E_CHECK(raw != MAP_FAILED, "mmap");
    char* mem = (char*)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
    E2E_CHECK(madvise(mem, kLen, areas[i].advice) == 0, "madvise %s: %s", areas[i].name,
              strerror(errno));
    for (size_t k = 0; k < kLen; k += 64) {
      mem[k] = (char)(k / 64 + i);
    }
    areas[i].mem = mem;
    if (areas[i].read_only) {
      E2E_CHECK(mprotect(mem, kLen, PROT_READ) == 0, "mprotect: %s", strerror(errno));
    }
    char flags[256];
    vm_flags_of(mem, flags, sizeof flags);
    E2E_CHECK(has_flag(flags, areas[i].flag), "%s: no '%s' in VmFlags before: %s", areas[i].name,
              areas[i].flag, flags);
  }
  e2e_ready();
  if (e2e_sabotage()) {
    E2E_CHECK(madvise(areas[4].mem, kLen, MADV_KEEPONFORK) == 0, "sabotage");
  }
  e2e_sleep_until(e2e_ready_time + 1.0);
  for (int i = 0; i < kAreas; i++) {
    char flags[256];
    vm_flags_of(areas[i].mem, flags, sizeof flags);
    E2E_CHECK(has_flag(flags, areas[i].flag), "%s: '%s' lost from VmFlags after restore: %s",
              areas[i].name, areas[i].flag, flags);
    E2E_CHECK(has_flag(flags, "wr") == !areas[i].read_only, "%s: writable %d after restore: %s",
              areas[i].name, has_flag(flags, "wr"), flags);
    for (size_t k = 0; k < kLen; k += 64) {
      E2E_CHECK(areas[i].mem[k] == (char)(k / 64 + i), "%s: byte %zu changed", areas[i].name, k);
    }
  }
  e2e_pass();
}
