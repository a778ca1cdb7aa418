// e2e case (runs under vos): threads spin in call-free loops that keep their state in vector and
// x87 registers across the checkpoint: AVX2 ymm accumulators (integer multiply/add, cross-lane
// permutes, double adds in the upper 128 bits too) and an SSE2 + x87 loop. Each thread runs with
// its own non-default rounding mode; the loops add values too small to change a number under
// round-to-nearest, so the results depend on MXCSR / the x87 control word staying as set. After
// the stop flag every lane is compared exactly against a closed form of the iteration count.
#define _GNU_SOURCE  // before any libc header
#include <fenv.h>
#include <immintrin.h>
#include <stdatomic.h>
#include <ucontext.h>

#include "e2e_common.h"

static atomic_int stop, started;

static uint32_t pow32(uint32_t a, uint64_t n) {  // a^n mod 2^32
  uint32_t r = 1;
  for (; n != 0; n >>= 1, a *= a) {
    if (n & 1) {
      r *= a;
    }
  }
  return r;
}

// MXCSR without its sticky exception flags (bits 0-5), which the loops set as they round.
static unsigned mxcsr_control(void) {
  return _mm_getcsr() & ~0x3fu;
}

static unsigned x87_control_word(void) {
  unsigned short cw;
  __asm__ volatile("fnstcw %0" : "=m"(cw));
  return cw;
}

// ---- AVX2 thread: FE_UPWARD -------------------------------------------------------------
static const uint32_t kMulInit[8] = {1, 3, 5, 7, 0x12345679, 0xdeadbeef, 0xfffffffd, 11};
static const uint32_t kMul[8] = {3, 5, 7, 9, 0x9e3779b1, 0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f};
static const uint32_t kMul2Init[8] = {2, 4, 6, 8, 10, 12, 14, 0x80000000};
static const uint32_t kMul2[8] = {0xfffffffb, 13, 0x01000193, 0x5bd1e995, 17, 19, 21, 23};
static const uint64_t kAddInit[4] = {0, 1ull << 40, ~0ull, 0x0123456789abcdefull};
static const uint64_t kAdd[4] = {1, 0x100000001ull, 0xfedcba9876543211ull, 7};
static const uint64_t kAdd2Init[4] = {9, 8, 7, 6};
static const uint64_t kAdd2[4] = {0x8000000000000001ull, 3, 0xffff, 1ull << 63};
static const uint64_t kPermInit[4] = {0x1111, 0x2222, 0x3333, 0x4444};
// Lane 2 of d1, lanes 0 and 3 of d2 add 2^-60: only upward rounding moves them by one ulp.
static const double kD1Init[4] = {0.0, 1000.0, 1.0, -7.0};
static const double kD1Add[4] = {1.0, 0.5, 0x1p-60, 2.0};
static const double kD2Init[4] = {3.0, 0.0, 5.0, 1.5};
static const double kD2Add[4] = {0x1p-60, 0.25, 1.0, 0x1p-60};
static const double kD3Init[4] = {-1.0, 1.0, 1.0, 64.0};
static const double kD3Add[4] = {-1.0, 0x1p-60, 0x1p-60, 0.125};

struct AvxOut {
  uint64_t n;
  uint32_t mul[8], mul2[8];
  uint64_t add[4], add2[4], perm[4];
  double d1[4], d2[4], d3[4];
  unsigned mxcsr_before, mxcsr_after;
  int round_after;
};
static struct AvxOut avx_out;

__attribute__((target("avx2"))) static void avx_loop(struct AvxOut* o) {
  __m256i mul = _mm256_loadu_si256((const __m256i*)kMulInit);
  __m256i mul_k = _mm256_loadu_si256((const __m256i*)kMul);
  __m256i add = _mm256_loadu_si256((const __m256i*)kAddInit);
  __m256i add_k = _mm256_loadu_si256((const __m256i*)kAdd);
  __m256i perm = _mm256_loadu_si256((const __m256i*)kPermInit);
  __m256d d1 = _mm256_loadu_pd(kD1Init), d1_k = _mm256_loadu_pd(kD1Add);
  __m256d d2 = _mm256_loadu_pd(kD2Init), d2_k = _mm256_loadu_pd(kD2Add);
  // A second set so that all sixteen ymm registers hold live values.
  __m256i mul2 = _mm256_loadu_si256((const __m256i*)kMul2Init);
  __m256i mul2_k = _mm256_loadu_si256((const __m256i*)kMul2);
  __m256i add2 = _mm256_loadu_si256((const __m256i*)kAdd2Init);
  __m256i add2_k = _mm256_loadu_si256((const __m256i*)kAdd2);
  __m256d d3 = _mm256_loadu_pd(kD3Init), d3_k = _mm256_loadu_pd(kD3Add);
  uint64_t n = 0;
  atomic_fetch_add(&started, 1);
  // No calls in the loop: every value above lives in a ymm register across the checkpoint.
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    mul = _mm256_mullo_epi32(mul, mul_k);
    add = _mm256_add_epi64(add, add_k);
    perm = _mm256_permute4x64_epi64(perm, 0x39);  // lane i <- lane i+1 (mod 4)
    d1 = _mm256_add_pd(d1, d1_k);
    d2 = _mm256_add_pd(d2, d2_k);
    mul2 = _mm256_mullo_epi32(mul2, mul2_k);
    add2 = _mm256_add_epi64(add2, add2_k);
    d3 = _mm256_add_pd(d3, d3_k);
    n++;
  }
  o->n = n;
  _mm256_storeu_si256((__m256i*)o->mul, mul);
  _mm256_storeu_si256((__m256i*)o->add, add);
  _mm256_storeu_si256((__m256i*)o->perm, perm);
  _mm256_storeu_pd(o->d1, d1);
  _mm256_storeu_pd(o->d2, d2);
  _mm256_storeu_si256((__m256i*)o->mul2, mul2);
  _mm256_storeu_si256((__m256i*)o->add2, add2);
  _mm256_storeu_pd(o->d3, d3);
}

static void* avx_thread(void* arg) {
  (void)arg;
  fesetround(FE_UPWARD);
  avx_out.mxcsr_before = mxcsr_control();
  avx_loop(&avx_out);
  avx_out.mxcsr_after = mxcsr_control();
  avx_out.round_after = fegetround();
  return NULL;
}

static void check_avx(void) {
  const struct AvxOut* o = &avx_out;
  uint64_t n = o->n;
  for (int i = 0; i < 8; i++) {
    uint32_t want = kMulInit[i] * pow32(kMul[i], n);
    E2E_CHECK(o->mul[i] == want, "ymm mul lane %d: %#x, want %#x (n=%llu)", i, o->mul[i], want,
              (unsigned long long)n);
    E2E_CHECK(o->mul2[i] == kMul2Init[i] * pow32(kMul2[i], n), "ymm mul2 lane %d differs", i);
  }
  for (int i = 0; i < 4; i++) {
    E2E_CHECK(o->add[i] == kAddInit[i] + n * kAdd[i], "ymm add lane %d differs", i);
    E2E_CHECK(o->add2[i] == kAdd2Init[i] + n * kAdd2[i], "ymm add2 lane %d differs", i);
    E2E_CHECK(o->perm[i] == kPermInit[(i + n) % 4], "ymm permute lane %d differs", i);
  }
  const double d1[4] = {(double)n, 1000.0 + 0.5 * (double)n, 1.0 + (double)n * 0x1p-52,
                        -7.0 + 2.0 * (double)n};
  const double d2[4] = {3.0 + (double)n * 0x1p-51, 0.25 * (double)n, 5.0 + (double)n,
                        1.5 + (double)n * 0x1p-52};
  const double d3[4] = {-1.0 - (double)n, 1.0 + (double)n * 0x1p-52, 1.0 + (double)n * 0x1p-52,
                        64.0 + 0.125 * (double)n};
  for (int i = 0; i < 4; i++) {
    E2E_CHECK(o->d1[i] == d1[i], "ymm d1 lane %d: %a, want %a", i, o->d1[i], d1[i]);
    E2E_CHECK(o->d2[i] == d2[i], "ymm d2 lane %d: %a, want %a", i, o->d2[i], d2[i]);
    E2E_CHECK(o->d3[i] == d3[i], "ymm d3 lane %d: %a, want %a", i, o->d3[i], d3[i]);
  }
  E2E_CHECK(o->mxcsr_after == o->mxcsr_before, "AVX thread MXCSR %#x became %#x", o->mxcsr_before,
            o->mxcsr_after);
  E2E_CHECK(o->round_after == FE_UPWARD, "AVX thread rounding mode lost");
}

// ---- SSE2 + x87 thread: FE_DOWNWARD, flush-to-zero and denormals-are-zero ---------------
struct SseOut {
  uint64_t n;
  double d[2];
  uint64_t q[2];
  long double ld_count, ld_down;
  unsigned mxcsr_before, mxcsr_after, cw_before, cw_after;
  int round_after;
  double denormal_times_one;
};
static struct SseOut sse_out;

static void* sse_thread(void* arg) {
  (void)arg;
  fesetround(FE_DOWNWARD);
  _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ | DAZ
  sse_out.mxcsr_before = mxcsr_control();
  sse_out.cw_before = x87_control_word();
  __m128d d = _mm_set_pd(2.0, 0.0), d_k = _mm_set_pd(-0x1p-60, 1.0);  // {lane0, lane1} reversed
  __m128i q = _mm_set_epi64x(5, 0x0102030405060708), q_k = _mm_set_epi64x(-3, 0x1111);
  // Through volatiles: the compiler folds constants assuming round-to-nearest otherwise.
  static volatile long double v_one = 1.0L, v_tiny = 0x1p-70L;
  long double ld_count = 0.0L, ld_down = 2.0L, one = v_one, tiny = v_tiny;
  uint64_t n = 0;
  atomic_fetch_add(&started, 1);
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    d = _mm_add_pd(d, d_k);
    q = _mm_add_epi64(q, q_k);
    ld_count += one;
    ld_down -= tiny;  // downward: 2 - n * 2^-63 (one x87 ulp each time)
    n++;
  }
  sse_out.n = n;
  _mm_storeu_pd(sse_out.d, d);
  _mm_storeu_si128((__m128i*)sse_out.q, q);
  sse_out.ld_count = ld_count;
  sse_out.ld_down = ld_down;
  sse_out.mxcsr_after = mxcsr_control();
  sse_out.cw_after = x87_control_word();
  sse_out.round_after = fegetround();
  volatile double denormal = 0x1p-1070, unit = 1.0;
  sse_out.denormal_times_one = denormal * unit;  // 0 under DAZ
  return NULL;
}

static void check_sse(void) {
  const struct SseOut* o = &sse_out;
  double n = (double)o->n;
  E2E_CHECK(o->d[0] == n, "xmm lane 0: %a, want %a", o->d[0], n);
  E2E_CHECK(o->d[1] == 2.0 - n * 0x1p-52, "xmm lane 1 (downward rounding): %a, want %a", o->d[1],
            2.0 - n * 0x1p-52);
  E2E_CHECK(o->q[0] == 0x0102030405060708ull + o->n * 0x1111 && o->q[1] == 5 - 3 * o->n,
            "xmm integer lanes differ");
  E2E_CHECK(o->ld_count == (long double)o->n, "x87 counter %Lg, want %llu", o->ld_count,
            (unsigned long long)o->n);
  E2E_CHECK(o->ld_down == 2.0L - (long double)o->n * 0x1p-63L, "x87 downward value %La",
            o->ld_down);
  E2E_CHECK(o->mxcsr_after == o->mxcsr_before, "SSE thread MXCSR %#x became %#x", o->mxcsr_before,
            o->mxcsr_after);
  E2E_CHECK(o->cw_after == o->cw_before, "x87 control word %#x became %#x", o->cw_before,
            o->cw_after);
  E2E_CHECK(o->round_after == FE_DOWNWARD, "SSE thread rounding mode lost");
  E2E_CHECK(o->denormal_times_one == 0.0, "DAZ lost: denormal * 1 = %a", o->denormal_times_one);
}

// Sabotage: what a restore that loses vector state would do, through the signal frame.
static void corrupt_fpu(int sig, siginfo_t* si, void* ctx) {
  (void)sig;
  (void)si;
  ucontext_t* uc = ctx;
  uc->uc_mcontext.fpregs->mxcsr = 0x1f80;
  for (int i = 0; i < 16; i++) {
    uc->uc_mcontext.fpregs->_xmm[i].element[0] ^= 1;
  }
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  int have_avx2 = __builtin_cpu_supports("avx2") != 0;
  pthread_t avx = 0, sse;
  if (have_avx2) {
    pthread_create(&avx, NULL, avx_thread, NULL);
  } else {
    fprintf(stderr, "note: no AVX2 on this CPU, testing SSE and x87 only\n");
  }
  pthread_create(&sse, NULL, sse_thread, NULL);
  fesetround(FE_TOWARDZERO);
  while (atomic_load(&started) < 1 + have_avx2) {
    usleep(1000);
  }
  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = corrupt_fpu;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_kill(have_avx2 ? avx : sse, SIGUSR1);
  }
  e2e_sleep_until(e2e_ready_time + 2.0);
  atomic_store(&stop, 1);
  if (have_avx2) {
    pthread_join(avx, NULL);
    check_avx();
  }
  pthread_join(sse, NULL);
  check_sse();

  // The main thread slept through the checkpoint with its own rounding mode.
  E2E_CHECK(fegetround() == FE_TOWARDZERO, "main thread rounding mode lost");
  volatile double one = 1.0, three_quarter_ulp = 0x1.8p-53;
  E2E_CHECK(one + three_quarter_ulp == 1.0, "main thread does not round toward zero");
  e2e_pass();
}
