/*
 * mem_program SIZE_MIB READY_FILE [DIRTY_MIB [spread|block]]
 *
 * Benchmark workload for vos: a process whose memory contents can be proven
 * intact after checkpoint/restore.
 *
 *   1. mmap()s SIZE_MIB MiB of anonymous memory and writes every 8-byte word
 *      with pattern(address). The pattern is a hash of the word's address, so
 *      it is incompressible (the image cannot get smaller than the memory by
 *      compression) and any page restored at the wrong place or with the wrong
 *      contents is detected.
 *   2. Creates READY_FILE (written to READY_FILE.tmp, then renamed, so a
 *      reader never sees a partial file). It holds "key=value" lines:
 *      pid, base, size_mib, touch_ms.
 *   3. Loops forever, every TICK_MS:
 *        - checks a random sample of words (cheap, catches gross damage);
 *        - on SIGUSR1, checks the WHOLE region and writes READY_FILE.verify:
 *          first line "OK" or "BAD <byte offset of first bad word>", then
 *          "stall_ms=<longest time the loop was held up beyond one tick since
 *          the last report>", which is an outside measure of a checkpoint's
 *          pause (only meaningful while the process keeps running; it can
 *          under-read by up to one tick, as a stop may begin mid-sleep);
 *        - on SIGUSR2, flips one byte in the middle of the region. This debug
 *          hook exists to prove the checker can fail.
 *        - only with DIRTY_MIB: on SIGHUP, rewrites exactly DIRTY_MIB MiB
 *          (whole 4 KiB pages) with new contents and then writes
 *          READY_FILE.dirtied ("passes=", "pages=", "dirty_ms="). "spread"
 *          (default) rewrites every k-th page across the region, k =
 *          region pages / dirty pages, starting one page further on each
 *          pass; "block" rewrites one contiguous block, the next block on
 *          each pass. A rewritten page holds pattern(address) ^ mask(pass),
 *          and a per-page pass number (a heap array, itself part of the
 *          memory a checkpoint must carry) tells every check what to expect.
 *          The verify file then also says "dirty_passes=N", so a restore
 *          that brought back stale pages *and* a stale pass array is caught
 *          by the runner, which knows how many passes it asked for.
 *      The verify file also carries "verify_ms=", how long the full check
 *      took: right after a lazy restore, that pass is what pays for the
 *      pages not yet in memory.
 *      If the sampled check ever fails it writes "BAD <offset> periodic" to
 *      READY_FILE.verify at once and remembers it, so a later full check still
 *      reports BAD even if the damage were somehow undone.
 *
 * MEM_PROGRAM_SPIN=N (1 or more): the loop does not sleep between ticks but spins
 * on CLOCK_MONOTONIC, on the main thread and N-1 more threads, each on a core of
 * its own if there are enough: stall_ms is then the largest gap any of them saw
 * between two clock reads (no tick subtracted), the pause a busy program feels,
 * CPU taken from it by others included. A program that sleeps between ticks
 * (the default) hides that.
 *
 * The process keeps no file descriptor open between steps, so it needs
 * nothing from a checkpoint tool beyond memory, registers and signals.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The tick bounds the resolution of stall_ms; 1024 samples per tick cost
 * ~1% of a core. */
enum { TICK_MS = 10, SAMPLES_PER_TICK = 1024 };

static const uint64_t SEED = 0x5eed0f0a11c0ffeeULL;

/* Set by the signal handlers, acted on by the main loop (where it is safe to
 * do real work). */
static volatile sig_atomic_t verify_requested;
static volatile sig_atomic_t corrupt_requested;
static volatile sig_atomic_t dirty_requested;

enum { PAGE_WORDS = 4096 / sizeof(uint64_t) };

static uint64_t *region;
static size_t region_words;
/* Dirty mode only: the pass that last rewrote each page (0 = never). */
static uint8_t *page_pass;
static unsigned dirty_passes;

/* splitmix64 finaliser of (address ^ seed): deterministic, address-bound,
 * incompressible. */
static inline uint64_t pattern(const uint64_t *addr) {
    uint64_t z = (uint64_t)(uintptr_t)addr ^ SEED;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* What word i should hold: the pattern, changed by every rewrite pass. */
static inline uint64_t expected(size_t i) {
    uint64_t v = pattern(&region[i]);
    if (page_pass) v ^= (uint64_t)page_pass[i / PAGE_WORDS] * 0x9e3779b97f4a7c15ULL;
    return v;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_usr1(int sig) { (void)sig; verify_requested = 1; }
static void on_usr2(int sig) { (void)sig; corrupt_requested = 1; }
static void on_hup(int sig) { (void)sig; dirty_requested = 1; }

static int install_handler(int sig, void (*fn)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: we want the sleep to end early so requests are served
     * promptly. */
    return sigaction(sig, &sa, NULL);
}

/* Write `text` to `path` atomically (tmp file + rename). Returns 0 on success. */
static int write_file_atomic(const char *path, const char *text) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { close(fd); unlink(tmp); return -1; }
        done += (size_t)n;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) { unlink(tmp); return -1; }
    return 0;
}

static void fill_region(void) {
    for (size_t i = 0; i < region_words; i++) region[i] = pattern(&region[i]);
}

/* Index of the first bad word, or region_words if all are good. */
static size_t first_bad_word(void) {
    for (size_t i = 0; i < region_words; i++)
        if (region[i] != expected(i)) return i;
    return region_words;
}

static uint64_t xorshift64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

/* Sampled check: first word, last word and SAMPLES_PER_TICK random ones. */
static size_t sampled_bad_word(uint64_t *rng) {
    size_t idx[2] = {0, region_words - 1};
    for (int k = 0; k < 2; k++)
        if (region[idx[k]] != expected(idx[k])) return idx[k];
    for (int k = 0; k < SAMPLES_PER_TICK; k++) {
        size_t i = (size_t)(xorshift64(rng) % region_words);
        if (region[i] != expected(i)) return i;
    }
    return region_words;
}

/* One rewrite pass over dirty_pages pages: see the header comment. */
static void dirty_pass(size_t dirty_pages, int block) {
    size_t pages = region_words / PAGE_WORDS;
    size_t stride = block ? 1 : pages / dirty_pages;
    size_t first = block ? (dirty_passes * dirty_pages) % (pages - dirty_pages + 1)
                         : dirty_passes % stride;
    unsigned pass = ++dirty_passes;
    for (size_t k = 0; k < dirty_pages; k++) {
        size_t p = first + k * stride;
        page_pass[p] = (uint8_t)pass;   /* wraps after 255 passes: still differs from the last */
        for (size_t i = p * PAGE_WORDS; i < (p + 1) * PAGE_WORDS; i++) region[i] = expected(i);
    }
}

static void report(const char *verify_path, const char *status, double stall_ms,
                   double verify_ms) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s\nstall_ms=%.1f\nverify_ms=%.1f\ndirty_passes=%u\n", status,
             stall_ms, verify_ms, dirty_passes);
    if (write_file_atomic(verify_path, buf) != 0)
        fprintf(stderr, "mem_program: cannot write %s: %s\n", verify_path, strerror(errno));
}

/* MEM_PROGRAM_SPIN: the largest gap each extra spinner saw since the last report, read and
 * reset by the main loop's report. */
enum { MAX_SPINNERS = 64 };
static _Atomic double spinner_gap[MAX_SPINNERS];

static void *spinner(void *arg) {
    _Atomic double *gap = arg;
    double last = now_ms();
    for (;;) {
        double now = now_ms();
        if (now - last > atomic_load_explicit(gap, memory_order_relaxed))
            atomic_store_explicit(gap, now - last, memory_order_relaxed);
        last = now;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s SIZE_MIB READY_FILE [DIRTY_MIB [spread|block]]\n", argv[0]);
        return 2;
    }
    char *end;
    errno = 0;
    unsigned long long mib = strtoull(argv[1], &end, 10);
    if (errno || *end || mib == 0 || mib > (SIZE_MAX >> 21)) {
        fprintf(stderr, "mem_program: bad SIZE_MIB '%s'\n", argv[1]);
        return 2;
    }
    const char *ready_path = argv[2];
    char verify_path[4096], dirtied_path[4096];
    if (snprintf(verify_path, sizeof verify_path, "%s.verify", ready_path) >= (int)sizeof verify_path ||
        snprintf(dirtied_path, sizeof dirtied_path, "%s.dirtied", ready_path) >=
            (int)sizeof dirtied_path) {
        fprintf(stderr, "mem_program: READY_FILE path too long\n");
        return 2;
    }
    unsigned long long dirty_mib = 0;
    int block = 0;
    if (argc >= 4) {
        errno = 0;
        dirty_mib = strtoull(argv[3], &end, 10);
        if (errno || *end || dirty_mib == 0 || dirty_mib > mib) {
            fprintf(stderr, "mem_program: bad DIRTY_MIB '%s' (1..SIZE_MIB)\n", argv[3]);
            return 2;
        }
    }
    if (argc == 5) {
        if (strcmp(argv[4], "block") == 0) block = 1;
        else if (strcmp(argv[4], "spread") != 0) {
            fprintf(stderr, "mem_program: layout must be spread or block, not '%s'\n", argv[4]);
            return 2;
        }
    }

    size_t bytes = (size_t)mib << 20;
    double t0 = now_ms();
    region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
        fprintf(stderr, "mem_program: mmap %zu bytes: %s\n", bytes, strerror(errno));
        return 1;
    }
    /* MEM_PROGRAM_HUGEPAGE=1: the region asks for transparent huge pages, as a program that
     * knows it is big would (and a restore may then use them too). */
    const char *huge = getenv("MEM_PROGRAM_HUGEPAGE");
    if (huge != NULL && huge[0] == '1' && madvise(region, bytes, MADV_HUGEPAGE) != 0) {
        fprintf(stderr, "mem_program: madvise(MADV_HUGEPAGE): %s\n", strerror(errno));
        return 1;
    }
    region_words = bytes / sizeof *region;
    if (dirty_mib) {
        page_pass = calloc(region_words / PAGE_WORDS, 1);
        if (!page_pass) {
            fprintf(stderr, "mem_program: out of memory\n");
            return 1;
        }
    }
    fill_region();
    double touch_ms = now_ms() - t0;

    if (install_handler(SIGUSR1, on_usr1) || install_handler(SIGUSR2, on_usr2) ||
        (dirty_mib && install_handler(SIGHUP, on_hup))) {
        perror("mem_program: sigaction");
        return 1;
    }
    char info[512];
    snprintf(info, sizeof info, "pid=%d\nbase=%p\nsize_mib=%llu\ntouch_ms=%.1f\n",
             (int)getpid(), (void *)region, mib, touch_ms);
    if (write_file_atomic(ready_path, info) != 0) {
        fprintf(stderr, "mem_program: cannot write %s: %s\n", ready_path, strerror(errno));
        return 1;
    }

    const char *spin_env = getenv("MEM_PROGRAM_SPIN");
    int spinners = spin_env ? atoi(spin_env) : 0;
    if (spinners < 0 || spinners > MAX_SPINNERS) {
        fprintf(stderr, "mem_program: MEM_PROGRAM_SPIN must be 0..%d\n", MAX_SPINNERS);
        return 2;
    }
    for (int i = 1; i < spinners; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, spinner, &spinner_gap[i]) != 0) {
            fprintf(stderr, "mem_program: pthread_create failed\n");
            return 1;
        }
    }

    uint64_t rng = SEED;
    size_t sticky_bad = region_words;   /* first bad word seen by the sampler */
    double max_gap = 0, last = now_ms();
    const struct timespec tick = {0, TICK_MS * 1000000L};
    double next_sample = 0;

    for (;;) {
        /* A gap much longer than one tick means the whole process was held
         * still (e.g. frozen for a checkpoint). */
        double now = now_ms();
        if (now - last > max_gap) max_gap = now - last;
        last = now;

        /* Spinning, the sample is taken once a tick, not on every clock read. */
        if (spinners > 0 && now < next_sample && !verify_requested && !dirty_requested &&
            !corrupt_requested)
            continue;
        next_sample = now + TICK_MS;
        size_t bad = sampled_bad_word(&rng);
        if (bad < region_words && sticky_bad == region_words) {
            sticky_bad = bad;
            char status[64];
            snprintf(status, sizeof status, "BAD %zu periodic", bad * sizeof *region);
            fprintf(stderr, "mem_program: %s\n", status);
            report(verify_path, status, 0, 0);
        }

        if (corrupt_requested) {
            corrupt_requested = 0;
            size_t off = bytes / 2 + 5;
            ((volatile unsigned char *)region)[off] ^= 0x01;
            fprintf(stderr, "mem_program: SIGUSR2: flipped byte at offset %zu\n", off);
        }

        if (dirty_requested) {
            dirty_requested = 0;
            double t = now_ms();
            dirty_pass((size_t)dirty_mib * 256, block);
            char msg[128];
            snprintf(msg, sizeof msg, "passes=%u\npages=%llu\ndirty_ms=%.1f\n", dirty_passes,
                     dirty_mib * 256, now_ms() - t);
            if (write_file_atomic(dirtied_path, msg) != 0)
                fprintf(stderr, "mem_program: cannot write %s: %s\n", dirtied_path, strerror(errno));
            last = now_ms();    /* the pass's own time is not a stall */
        }

        if (verify_requested) {
            verify_requested = 0;
            double t = now_ms();
            size_t b = first_bad_word();
            if (b == region_words) b = sticky_bad;
            char status[64];
            if (b == region_words) snprintf(status, sizeof status, "OK");
            else snprintf(status, sizeof status, "BAD %zu", b * sizeof *region);
            double stall = spinners > 0 ? max_gap : max_gap > TICK_MS ? max_gap - TICK_MS : 0;
            for (int i = 1; i < spinners; i++) {
                double g = atomic_exchange(&spinner_gap[i], 0.0);
                if (g > stall) stall = g;
            }
            report(verify_path, status, stall, now_ms() - t);
            max_gap = 0;
            last = now_ms();    /* the full check's own time is not a stall */
        }

        if (spinners == 0)
            clock_nanosleep(CLOCK_MONOTONIC, 0, &tick, NULL);   /* EINTR is fine */
    }
}
