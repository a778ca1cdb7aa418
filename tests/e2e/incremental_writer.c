// e2e case (runs under vos, driven by incremental.sh): memory that changes a little between
// checkpoints, in every way an incremental image must follow:
//   - pages of a 48 MiB table rewritten at random (each holds its page number and generation in
//     every word; gen[] on the heap records what each page must hold);
//   - runs of pages discarded with MADV_DONTNEED (generation 0: they must come back as zeros,
//     not as a parent image's older copy);
//   - a region unmapped and mapped again with new contents (stored whole: the write tracker does
//     not follow new mappings), and a region moved with mremap (followed: its pages must be found
//     at their new addresses);
//   - a private file mapping with pages written (its other pages come from the file), and
//     written pages discarded again (MADV_DONTNEED: they read the file's data once more);
//   - a few "hot" pages a thread of their own rewrites without pause: every pre-copy round of a
//     live incremental checkpoint copies them and they are written again before the freeze, so
//     an image that kept a round's copy instead of storing them again is caught by that thread.
// The harness takes checkpoints while this runs and restores chains of incremental images; the
// program keeps going until <dir>/stop exists, then checks every page and reports.
#define _GNU_SOURCE  // before any libc header
#include <sys/mman.h>
#include <sys/stat.h>

#include "e2e_common.h"

enum { kPage = 4096, kTablePages = 12288, kSidePages = 256, kFilePages = 64, kHotPages = 16 };

static uint64_t* table;
static uint32_t* gen;    // per table page; 0 = discarded
static uint64_t* fresh;  // remapped from scratch now and then; all words = fresh_gen
static uint64_t fresh_gen;
static uint64_t* moving;  // moved with mremap now and then; word i = i * 3 + 1
static uint64_t* moving_slots[2];
static int moving_at;
static uint64_t* filemap;  // private file mapping; written pages hold file_gen[p] + page marker
static uint32_t file_gen[kFilePages];
static uint64_t rng = 88172645463325252ull;
static uint64_t* hot;  // kHotPages pages, rewritten in passes by hot_writer()

static uint64_t hot_word(uint64_t pass, int p) {
  return (pass << 8) | (uint64_t)p;
}

// Rewrites every hot page in passes, ~10000 a second, and before each write checks that the page
// still holds what the previous pass wrote. The pass number lives in a register (the frozen
// thread's registers are captured exactly), so a page restored from a copy older than the freeze
// is caught the moment the restored thread reaches it.
static void* hot_writer(void* unused) {
  (void)unused;
  for (uint64_t pass = 1;; pass++) {
    for (int p = 0; p < kHotPages; p++) {
      uint64_t* w = hot + p * (kPage / 8);
      uint64_t was = hot_word(pass - 1, p);
      if (pass > 1 && (w[0] != was || w[kPage / 8 - 1] != was)) {
        e2e_fail("hot page %d holds %#llx, its writer last wrote %#llx there (a stale copy)", p,
                 (unsigned long long)w[0], (unsigned long long)was);
      }
      for (int i = 0; i < kPage / 8; i++) {
        w[i] = hot_word(pass, p);
      }
    }
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
  }
}

static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uint64_t word_for(uint64_t page, uint64_t g) {
  return (page << 32) ^ (g * 0x9E3779B97F4A7C15ull);
}

static void write_page(uint64_t p) {
  uint32_t g = ++gen[p] == 0 ? ++gen[p] : gen[p];
  uint64_t* w = table + p * (kPage / 8);
  for (int i = 0; i < kPage / 8; i++) {
    w[i] = word_for(p, g) + (uint64_t)i;
  }
}

static void check_all(const char* when) {
  for (uint64_t p = 0; p < kTablePages; p++) {
    const uint64_t* w = table + p * (kPage / 8);
    for (int i = 0; i < kPage / 8; i++) {
      uint64_t want = gen[p] == 0 ? 0 : word_for(p, gen[p]) + (uint64_t)i;
      if (w[i] != want) {
        e2e_fail("%s: table page %llu word %d holds %#llx, want %#llx (generation %u)", when,
                 (unsigned long long)p, i, (unsigned long long)w[i], (unsigned long long)want,
                 gen[p]);
      }
    }
  }
  for (int i = 0; i < kSidePages * kPage / 8; i++) {
    if (fresh[i] != fresh_gen) {
      e2e_fail("%s: remapped region word %d holds %llu, want %llu", when, i,
               (unsigned long long)fresh[i], (unsigned long long)fresh_gen);
    }
    if (moving[i] != (uint64_t)i * 3 + 1) {
      e2e_fail("%s: moved region word %d wrong", when, i);
    }
  }
  for (int p = 0; p < kFilePages; p++) {
    for (int i = 0; i < kPage / 8; i++) {
      uint64_t want = file_gen[p] == 0 ? 0x0101010101010101ull * (uint64_t)(p + 1)
                                       : ((uint64_t)p << 40) + file_gen[p] + (uint64_t)i;
      if (filemap[p * (kPage / 8) + i] != want) {
        e2e_fail("%s: file mapping page %d word %d wrong (generation %u)", when, p, i, file_gen[p]);
      }
    }
  }
}

static void remap_fresh(void) {
  munmap(fresh, kSidePages * kPage);
  fresh =
      mmap(NULL, kSidePages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(fresh != MAP_FAILED, "mmap fresh");
  fresh_gen++;
  for (int i = 0; i < kSidePages * kPage / 8; i++) {
    fresh[i] = fresh_gen;
  }
}

static void move_region(void) {
  moving_at ^= 1;
  void* to = mremap(moving, kSidePages * kPage, kSidePages * kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                    moving_slots[moving_at]);
  E2E_CHECK(to == moving_slots[moving_at], "mremap");
  moving = to;
  // The slot left behind gets a fresh reservation, so the next move has a place to go.
  void* back = mmap(moving_slots[moving_at ^ 1], kSidePages * kPage, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  E2E_CHECK(back == moving_slots[moving_at ^ 1], "mmap reservation");
}

static void map_file(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/backing.dat", e2e_dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  E2E_CHECK(fd >= 0, "open %s", path);
  static char page[kPage];
  for (int p = 0; p < kFilePages; p++) {
    memset(page, p + 1, sizeof page);
    E2E_CHECK(write(fd, page, sizeof page) == (ssize_t)sizeof page, "write backing");
  }
  filemap = mmap(NULL, kFilePages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  E2E_CHECK(filemap != MAP_FAILED, "mmap file");
  close(fd);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  table = mmap(NULL, (size_t)kTablePages * kPage, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  gen = calloc(kTablePages, sizeof *gen);
  E2E_CHECK(table != MAP_FAILED && gen != NULL, "allocating the table");
  for (uint64_t p = 0; p < kTablePages; p++) {
    write_page(p);
  }
  fresh = mmap(NULL, kSidePages * kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  remap_fresh();
  char* slots = mmap(NULL, 2 * kSidePages * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(slots != MAP_FAILED, "mmap slots");
  moving_slots[0] = (uint64_t*)slots;
  moving_slots[1] = (uint64_t*)(slots + kSidePages * kPage);
  moving = mmap(moving_slots[0], kSidePages * kPage, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  E2E_CHECK(moving == moving_slots[0], "mmap moving");
  for (int i = 0; i < kSidePages * kPage / 8; i++) {
    moving[i] = (uint64_t)i * 3 + 1;
  }
  map_file();
  hot = mmap(NULL, kHotPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(hot != MAP_FAILED, "mmap hot pages");
  pthread_t hot_thread;
  E2E_CHECK(pthread_create(&hot_thread, NULL, hot_writer, NULL) == 0, "pthread_create");
  check_all("before ready");

  char stop[4096];
  snprintf(stop, sizeof stop, "%s/stop", e2e_dir);
  int ready = 0;
  for (uint64_t step = 1;; step++) {
    write_page(next_random() % kTablePages);
    if (step % 400 == 0) {  // discard a run of 8 pages
      uint64_t p = next_random() % (kTablePages - 8);
      E2E_CHECK(madvise(table + p * (kPage / 8), 8 * kPage, MADV_DONTNEED) == 0, "madvise");
      memset(gen + p, 0, 8 * sizeof *gen);
    }
    if (step % 300 == 0) {
      int p = (int)(next_random() % kFilePages);
      file_gen[p]++;
      for (int i = 0; i < kPage / 8; i++) {
        filemap[p * (kPage / 8) + i] = ((uint64_t)p << 40) + file_gen[p] + (uint64_t)i;
      }
    }
    if (step % 450 == 0) {
      int p = (int)(next_random() % kFilePages);
      if (file_gen[p] != 0) {
        E2E_CHECK(madvise(filemap + p * (kPage / 8), kPage, MADV_DONTNEED) == 0, "madvise file");
        file_gen[p] = 0;
      }
    }
    if (step % 500 == 0) {
      remap_fresh();
    }
    if (step % 700 == 0) {
      move_region();
    }
    if (step == 2000) {
      e2e_ready();
      ready = 1;
      if (e2e_sabotage()) {
        table[5 * (kPage / 8)] ^= 1;  // a page that changed without the program knowing
      }
    }
    if (step % 50 == 0) {
      struct stat st;
      if (ready && stat(stop, &st) == 0) {
        // Right after a lazy restore most memory is not back yet: discarding and moving it now
        // must not bring old data back (or lose the moved pages).
        uint64_t p = next_random() % (kTablePages - 64);
        E2E_CHECK(madvise(table + p * (kPage / 8), 64 * kPage, MADV_DONTNEED) == 0, "madvise");
        memset(gen + p, 0, 64 * sizeof *gen);
        move_region();
        check_all("at stop");
        e2e_pass();
      }
      struct timespec ts = {0, 20 * 1000 * 1000};  // ~2500 page writes per second
      nanosleep(&ts, NULL);
    }
  }
}
