// Benchmark workload (runs bare and under `vos run`): the cost of single system calls that a
// program makes all the time. Some go through libvos.so's wrappers when run under vos
// (nanosleep, usleep, clock_nanosleep: see src/inject/sleep_wrappers.cc), the others are there to
// show that vos adds nothing where it does not wrap (a raw syscall, a pipe round trip, the vDSO
// clock). bench/run.py runs this twice in the same session and reports the difference per case.
//
// Output is Google Benchmark's; run.py passes --benchmark_format=json and reads stdout, so
// nothing else may be printed there.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace {

void BM_getpid_syscall(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(::syscall(SYS_getpid));
  }
}
BENCHMARK(BM_getpid_syscall);

// glibc stopped caching getpid() in 2.25, so this is the libc wrapper plus the system call.
void BM_getpid_libc(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(::getpid());
  }
}
BENCHMARK(BM_getpid_libc);

// One byte through a pipe and back: two system calls and pipe buffer bookkeeping.
void BM_pipe_write_read_1byte(benchmark::State& state) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe2 failed");
    return;
  }
  char c = 'x';
  for (auto _ : state) {
    if (::write(p[1], &c, 1) != 1 || ::read(p[0], &c, 1) != 1) {
      state.SkipWithError("pipe write/read failed");
      break;
    }
  }
  ::close(p[0]);
  ::close(p[1]);
}
BENCHMARK(BM_pipe_write_read_1byte);

// Zero-length sleeps: the kernel still arms a timer and usually schedules, so these cost
// microseconds and vary more than the calls above; the wrapper's share is a few nanoseconds.
void BM_nanosleep_0(benchmark::State& state) {
  const timespec zero{0, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(::nanosleep(&zero, nullptr));
  }
}
BENCHMARK(BM_nanosleep_0);

void BM_usleep_0(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(::usleep(0));
  }
}
BENCHMARK(BM_usleep_0);

void BM_clock_nanosleep_rel_0(benchmark::State& state) {
  const timespec zero{0, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(::clock_nanosleep(CLOCK_MONOTONIC, 0, &zero, nullptr));
  }
}
BENCHMARK(BM_clock_nanosleep_rel_0);

// An absolute deadline already past: the wrapper passes it through untouched.
void BM_clock_nanosleep_abs_past(benchmark::State& state) {
  const timespec past{0, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, nullptr));
  }
}
BENCHMARK(BM_clock_nanosleep_abs_past);

// The wrappers' own cost, without a sleep's scheduling noise: an invalid request goes through the
// same wrapper and system call but the kernel refuses it at once (EINVAL).
void BM_nanosleep_einval(benchmark::State& state) {
  const timespec bad{0, -1};
  for (auto _ : state) {
    benchmark::DoNotOptimize(::nanosleep(&bad, nullptr));
  }
}
BENCHMARK(BM_nanosleep_einval);

void BM_clock_nanosleep_einval(benchmark::State& state) {
  const timespec bad{0, -1};
  for (auto _ : state) {
    benchmark::DoNotOptimize(::clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nullptr));
  }
}
BENCHMARK(BM_clock_nanosleep_einval);

// Served by the vDSO without entering the kernel; a time namespace (after a restore) would add
// its offset here, a plain `vos run` has none.
void BM_clock_gettime_monotonic(benchmark::State& state) {
  timespec ts;
  for (auto _ : state) {
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(BM_clock_gettime_monotonic);

}  // namespace

int main(int argc, char** argv) {
  // The default 50 us timer slack would make every zero-length sleep a 50 us sleep and drown
  // the wrappers' cost; both runs use the same 1 ns slack.
  if (::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) != 0) {
    std::perror("micro_calls: prctl(PR_SET_TIMERSLACK)");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
