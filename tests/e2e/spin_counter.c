// e2e case (runs under vos): a memory-only counter used by the leave-running, restore-twice and
// cycles modes (it writes no file but ready/result, so one image may be restored many times).
// Each ~1 ms step checks the previous step's traces in a table, a heap copy of the counter and a
// hash chain; at the end the whole table and hash are recomputed from the step count.
//
// usage: spin_counter DIR [RUN_SECONDS]. It runs for RUN_SECONDS (default 2.5) of its own
// running time: gaps longer than 50 ms (the program frozen, killed, waiting for a restore) do not
// count, so it outlives any number of checkpoint/restore cycles. When <dir>/stop appears it
// finishes after 0.3 s more (the cycles driver creates it after the last restore).
#define _GNU_SOURCE  // before any libc header
#include "e2e_common.h"

enum { kTable = 4096 };
static uint64_t table[kTable];

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  double run_seconds = argc > 2 ? atof(argv[2]) : 2.5;
  char stop_path[4096];
  snprintf(stop_path, sizeof stop_path, "%s/stop", e2e_dir);
  uint64_t* heap_count = malloc(sizeof *heap_count);
  *heap_count = 0;

  uint64_t n = 0, hash = 0, pauses = 0;
  int stopping = 0;
  double ran = 0, last = e2e_now(), finish_at = run_seconds;
  for (;;) {
    // The previous step left exactly these traces.
    E2E_CHECK(*heap_count == n, "heap counter %llu, step %llu", (unsigned long long)*heap_count,
              (unsigned long long)n);
    if (n > 0) {
      E2E_CHECK(table[(n - 1) % kTable] == e2e_mix(n - 1), "step %llu lost its table entry",
                (unsigned long long)(n - 1));
    }
    uint64_t old = n >= kTable ? e2e_mix(n - kTable) : 0;
    E2E_CHECK(table[n % kTable] == old, "table slot %llu changed",
              (unsigned long long)(n % kTable));
    if (!(e2e_sabotage() && n == 500)) {
      table[n % kTable] = e2e_mix(n);
    }
    hash = e2e_mix(hash ^ n);
    n++;
    (*heap_count)++;

    if (n == 10) {
      e2e_ready();
    }
    struct timespec one_ms = {0, 1000000};
    nanosleep(&one_ms, NULL);
    double now = e2e_now(), delta = now - last;
    last = now;
    if (delta > 0.05) {
      pauses++;
    } else {
      ran += delta;
    }
    if (n % 16 == 0 && !stopping && access(stop_path, F_OK) == 0) {
      stopping = 1;
      finish_at = ran + 0.3;
    }
    if (ran >= finish_at) {
      break;
    }
  }

  uint64_t want_hash = 0;
  for (uint64_t i = 0; i < n; i++) {
    want_hash = e2e_mix(want_hash ^ i);
  }
  E2E_CHECK(hash == want_hash, "hash chain differs after %llu steps", (unsigned long long)n);
  for (uint64_t i = n > kTable ? n - kTable : 0; i < n; i++) {
    E2E_CHECK(table[i % kTable] == e2e_mix(i), "table entry of step %llu differs",
              (unsigned long long)i);
  }
  // Not to stderr: the modes that restore one image twice need the program's stdout/stderr
  // files unchanged after the checkpoint (vos checks their size on restore).
  char stats[128];
  snprintf(stats, sizeof stats, "%llu steps, %llu pauses\n", (unsigned long long)n,
           (unsigned long long)pauses);
  e2e_write_file("stats", stats);
  e2e_pass();
}
