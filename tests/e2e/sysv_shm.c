// e2e case (runs under vos): System V shared memory. Four segments: A (with a key, 3 MiB and a
// bit, sparse: some pages never touched) attached twice read-write at two addresses and once
// SHM_RDONLY, one of its read-write attachments split by mprotect and missing its last two pages;
// B (IPC_PRIVATE) attached once and marked IPC_RMID while attached; C (with a key) filled and
// then detached, attached nowhere; D (one page) attached where A's attachment lost its
// second-to-last page. After the pause: the same ids (shmget of each key, IPC_STAT
// of each id), the same IPC_STAT size, mode, key, owner and creator pid, every byte through
// every attachment (never-touched pages read zero), the same addresses and protections in
// /proc/self/maps, SHM_RDONLY still refusing PROT_WRITE, and writes through one attachment seen
// through the others.
#define _GNU_SOURCE  // before any libc header
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include "e2e_common.h"

enum { kPage = 4096 };
static const size_t kSizeA = (3u << 20) + 100;  // not a whole number of pages
static const size_t kSizeB = 64u << 10;
static const size_t kSizeC = 40u << 10;

// A direct run shares the machine's IPC namespace: whatever happens, the segments go with it.
static int g_ids[5] = {-1, -1, -1, -1, -1};

static void remove_segments(void) {
  for (int i = 0; i < 5; i++) {
    if (g_ids[i] >= 0) {
      shmctl(g_ids[i], IPC_RMID, NULL);
    }
  }
}

#define SHM_CHECK(cond, ...) \
  do {                       \
    if (!(cond)) {           \
      remove_segments();     \
      e2e_fail(__VA_ARGS__); \
    }                        \
  } while (0)

static uint8_t pattern(size_t offset, uint64_t seed) {
  return (uint8_t)(e2e_mix((offset & ~(size_t)7) ^ seed) >> ((offset & 7) * 8));
}

// Segment A's pages that are touched: all but every 5th page (those stay holes).
static int touched_a(size_t offset) {
  return (offset / kPage) % 5 != 4;
}

static void fill(uint8_t* p, size_t len, uint64_t seed, int sparse) {
  for (size_t i = 0; i < len; i++) {
    if (!sparse || touched_a(i)) {
      p[i] = pattern(i, seed);
    }
  }
}

static void check(const char* what, const uint8_t* p, size_t len, uint64_t seed, int sparse) {
  for (size_t i = 0; i < len; i++) {
    uint8_t want = !sparse || touched_a(i) ? pattern(i, seed) : 0;
    SHM_CHECK(p[i] == want, "%s: byte %zu of %zu is %#x, want %#x", what, i, len, p[i], want);
  }
}

// The /proc/self/maps line that starts at `addr`: its permissions and inode; 0 if none.
static int maps_at(const void* addr, char perms[5], unsigned long* ino, char* name, size_t cap) {
  FILE* f = fopen("/proc/self/maps", "r");
  SHM_CHECK(f != NULL, "open /proc/self/maps: %s", strerror(errno));
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long start, end;
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %n", &start, &end, perms, ino, &path_at) >= 4 &&
        start == (unsigned long)addr) {
      found = 1;
      line[strcspn(line, "\n")] = '\0';
      snprintf(name, cap, "%s", path_at > 0 ? line + path_at : "");
    }
  }
  fclose(f);
  return found;
}

static void check_mapping(const char* what, const void* addr, const char* perms, int id,
                          key_t key) {
  char got[5] = "", name[256], want_name[64];
  unsigned long ino = 0;
  SHM_CHECK(maps_at(addr, got, &ino, name, sizeof name), "%s: no mapping starts at %p", what, addr);
  SHM_CHECK(strcmp(got, perms) == 0, "%s: protection %s, want %s", what, got, perms);
  SHM_CHECK(ino == (unsigned long)id, "%s: segment %lu mapped, want %d", what, ino, id);
  snprintf(want_name, sizeof want_name, "/SYSV%08x (deleted)", (unsigned)key);
  SHM_CHECK(strcmp(name, want_name) == 0, "%s: maps name \"%s\", want \"%s\"", what, name,
            want_name);
}

static int mapped(const void* addr) {
  unsigned char v;
  return mincore((void*)addr, kPage, &v) == 0;
}

struct Seg {
  const char* name;
  key_t key;  // as created
  int id;
  struct shmid_ds ds;  // at ready
};

static void stat_seg(struct Seg* s) {
  SHM_CHECK(shmctl(s->id, IPC_STAT, &s->ds) == 0, "segment %s (id %d): IPC_STAT: %s", s->name,
            s->id, strerror(errno));
}

static void compare_stat(const struct Seg* s) {
  struct shmid_ds now;
  SHM_CHECK(shmctl(s->id, IPC_STAT, &now) == 0, "segment %s (id %d): IPC_STAT after: %s", s->name,
            s->id, strerror(errno));
  SHM_CHECK(now.shm_segsz == s->ds.shm_segsz, "segment %s: size %zu, want %zu", s->name,
            now.shm_segsz, s->ds.shm_segsz);
  SHM_CHECK(now.shm_perm.mode == s->ds.shm_perm.mode, "segment %s: mode %#o, want %#o", s->name,
            now.shm_perm.mode, s->ds.shm_perm.mode);
  SHM_CHECK(now.shm_perm.__key == s->ds.shm_perm.__key, "segment %s: key %#x, want %#x", s->name,
            now.shm_perm.__key, s->ds.shm_perm.__key);
  SHM_CHECK(now.shm_perm.uid == s->ds.shm_perm.uid && now.shm_perm.gid == s->ds.shm_perm.gid &&
                now.shm_perm.cuid == s->ds.shm_perm.cuid &&
                now.shm_perm.cgid == s->ds.shm_perm.cgid,
            "segment %s: owner %u:%u creator %u:%u, want %u:%u %u:%u", s->name, now.shm_perm.uid,
            now.shm_perm.gid, now.shm_perm.cuid, now.shm_perm.cgid, s->ds.shm_perm.uid,
            s->ds.shm_perm.gid, s->ds.shm_perm.cuid, s->ds.shm_perm.cgid);
  SHM_CHECK(now.shm_cpid == s->ds.shm_cpid, "segment %s: creator pid %d, want %d", s->name,
            now.shm_cpid, s->ds.shm_cpid);
  SHM_CHECK(now.shm_nattch == s->ds.shm_nattch, "segment %s: %lu attachments, want %lu", s->name,
            (unsigned long)now.shm_nattch, (unsigned long)s->ds.shm_nattch);
}

static uint8_t* attach(const struct Seg* s, int flags) {
  void* p = shmat(s->id, NULL, flags);
  SHM_CHECK(p != (void*)-1, "shmat segment %s: %s", s->name, strerror(errno));
  return p;
}

static int create(key_t key, size_t size, int mode) {
  int id = shmget(key, size, IPC_CREAT | IPC_EXCL | mode);
  SHM_CHECK(id >= 0, "shmget %#x: %s", (unsigned)key, strerror(errno));
  return id;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  // Keys of this process only: a direct run shares the machine's IPC namespace.
  key_t base_key = (key_t)(0x5e000000u | ((unsigned)getpid() & 0xffffffu) << 1);
  struct Seg a = {.name = "A", .key = base_key};
  struct Seg b = {.name = "B", .key = IPC_PRIVATE};
  struct Seg c = {.name = "C", .key = base_key + 1};
  struct Seg d = {.name = "D", .key = IPC_PRIVATE};
  // Another private segment first, removed at once: the ids in use are not just 0, 1, 2.
  int gone = g_ids[0] = create(IPC_PRIVATE, kPage, 0600);
  a.id = g_ids[1] = create(a.key, kSizeA, 0640);
  b.id = g_ids[2] = create(b.key, kSizeB, 0600);
  c.id = g_ids[3] = create(c.key, kSizeC, 0604);
  d.id = g_ids[4] = create(d.key, kPage, 0600);
  SHM_CHECK(shmctl(gone, IPC_RMID, NULL) == 0, "IPC_RMID: %s", strerror(errno));
  g_ids[0] = -1;

  uint8_t* a1 = attach(&a, 0);
  uint8_t* a2 = attach(&a, 0);
  uint8_t* a3 = attach(&a, SHM_RDONLY);
  fill(a1, kSizeA, 0xa, 1);
  size_t a_len = (kSizeA + kPage - 1) / kPage * kPage;
  // a2: its second page read-only (two more mappings), its last two pages unmapped, the first
  // of them taken by D (restore attaches A whole, then D over it).
  SHM_CHECK(mprotect(a2 + kPage, kPage, PROT_READ) == 0, "mprotect: %s", strerror(errno));
  SHM_CHECK(munmap(a2 + a_len - 2 * kPage, 2 * kPage) == 0, "munmap: %s", strerror(errno));
  uint8_t* d1 = shmat(d.id, a2 + a_len - 2 * kPage, 0);
  SHM_CHECK(d1 == a2 + a_len - 2 * kPage, "shmat D at %p: %s", (void*)(a2 + a_len - 2 * kPage),
            strerror(errno));
  fill(d1, kPage, 0xd, 0);

  uint8_t* b1 = attach(&b, 0);
  fill(b1, kSizeB, 0xb, 0);
  SHM_CHECK(shmctl(b.id, IPC_RMID, NULL) == 0, "IPC_RMID B: %s", strerror(errno));

  uint8_t* c1 = attach(&c, 0);
  fill(c1, kSizeC, 0xc, 0);
  SHM_CHECK(shmdt(c1) == 0, "shmdt C: %s", strerror(errno));

  stat_seg(&a);
  stat_seg(&b);
  stat_seg(&c);
  stat_seg(&d);
  SHM_CHECK(b.ds.shm_perm.mode & SHM_DEST, "segment B: IPC_RMID not in its mode %#o",
            b.ds.shm_perm.mode);

  e2e_ready();
  if (e2e_sabotage()) {
    c1 = attach(&c, 0);
    c1[kSizeC - 1] ^= 1;  // an unattached segment restored with a wrong byte
    shmdt(c1);
  }
  e2e_sleep_until(e2e_ready_time + 1.5);

  // Ids: each key still names its segment; each id still answers.
  SHM_CHECK(shmget(a.key, 0, 0) == a.id, "segment A: key %#x gives id %d, want %d", (unsigned)a.key,
            shmget(a.key, 0, 0), a.id);
  SHM_CHECK(shmget(c.key, 0, 0) == c.id, "segment C: key %#x gives id %d, want %d", (unsigned)c.key,
            shmget(c.key, 0, 0), c.id);
  compare_stat(&a);
  compare_stat(&b);
  compare_stat(&c);
  compare_stat(&d);
  struct shmid_ds gone_ds;
  SHM_CHECK(shmctl(gone, IPC_STAT, &gone_ds) != 0, "removed segment %d came back", gone);

  check_mapping("A attachment 1", a1, "rw-s", a.id, a.key);
  check_mapping("A attachment 2", a2, "rw-s", a.id, a.key);
  check_mapping("A attachment 2, page 2", a2 + kPage, "r--s", a.id, a.key);
  check_mapping("A attachment 2, page 3", a2 + 2 * kPage, "rw-s", a.id, a.key);
  check_mapping("A read-only attachment", a3, "r--s", a.id, a.key);
  check_mapping("B attachment", b1, "rw-s", b.id, IPC_PRIVATE);
  check_mapping("D, where A's attachment 2 was", d1, "rw-s", d.id, IPC_PRIVATE);
  SHM_CHECK(!mapped(a2 + a_len - kPage), "A attachment 2: its unmapped last page is back");
  SHM_CHECK(mprotect(a3, kPage, PROT_READ | PROT_WRITE) != 0 && errno == EACCES,
            "A read-only attachment: PROT_WRITE allowed (errno %d): SHM_RDONLY was lost", errno);

  check("A through attachment 1", a1, kSizeA, 0xa, 1);
  check("A through attachment 2", a2, a_len - 2 * kPage, 0xa, 1);
  check("D", d1, kPage, 0xd, 0);
  check("A through the read-only attachment", a3, kSizeA, 0xa, 1);
  check("B", b1, kSizeB, 0xb, 0);
  c1 = attach(&c, SHM_RDONLY);
  check("C", c1, kSizeC, 0xc, 0);
  shmdt(c1);

  // Still one segment: writes through one attachment show through the others.
  fill(a1, kSizeA, 0xaa, 0);
  check("A rewritten, through attachment 2", a2, a_len - 2 * kPage, 0xaa, 0);
  check("A rewritten, through the read-only attachment", a3, kSizeA, 0xaa, 0);

  // New segments still work, and do not take the old ids.
  int fresh = create(IPC_PRIVATE, kPage, 0600);
  SHM_CHECK(fresh != a.id && fresh != b.id && fresh != c.id && fresh != d.id,
            "new segment got id %d in use", fresh);
  shmctl(fresh, IPC_RMID, NULL);
  remove_segments();
  e2e_pass();
}
