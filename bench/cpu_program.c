/*
 * cpu_program ITERATIONS_MILLIONS
 *
 * Benchmark workload for vos's "no slowdown of a CPU-bound program" figure:
 * a dependent chain of splitmix64 steps (integer multiply and shift, no
 * memory traffic, no system calls inside the timed loop), so the only thing
 * vos could change is the CPU itself: namespaces, a preloaded library or a
 * tracer must not make it slower.
 *
 * Prints one line of "key=value" pairs to stdout:
 *   work_ms   wall time of the loop (CLOCK_MONOTONIC)
 *   cpu_ms    CPU time of the loop (CLOCK_PROCESS_CPUTIME_ID); compared with
 *             work_ms it shows whether the loop waited for a busy core
 *   result    the final hash, so the loop cannot be optimised away and both
 *             runs can be checked to have done the same work
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double ms_of(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 2 || atol(argv[1]) <= 0) {
        fprintf(stderr, "usage: %s ITERATIONS_MILLIONS\n", argv[0]);
        return 2;
    }
    uint64_t n = (uint64_t)atol(argv[1]) * 1000000u;
    uint64_t z = 0x5eed;
    double wall0 = ms_of(CLOCK_MONOTONIC), cpu0 = ms_of(CLOCK_PROCESS_CPUTIME_ID);
    for (uint64_t i = 0; i < n; i++) {
        z += 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
    }
    double wall = ms_of(CLOCK_MONOTONIC) - wall0, cpu = ms_of(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    printf("work_ms=%.3f cpu_ms=%.3f result=%016" PRIx64 "\n", wall, cpu, z);
    return 0;
}
