// e2e case (runs under vos): at checkpoint time one thread is in pthread_cond_wait(), one in a
// raw FUTEX_WAIT with no timeout, one in pthread_mutex_lock() on a held mutex, and the main
// thread in pthread_join() (a futex on the kernel-cleared tid). A waker releases them all 1.5 s
// after ready. Each must return 0 only after the wake, and the raw FUTEX_WAIT must not come back
// early (EINTR, or 0 while the word is still 0).
#define _GNU_SOURCE  // before any libc header
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "e2e_common.h"

static pthread_mutex_t cv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_flag;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static atomic_int futex_word;
static atomic_int waker_holds_mutex, ready_written;
static double wake_time;  // written by the waker before it releases anything

static int cv_ret = -1, spurious;
static double cv_woke;
static long futex_ret = -2;
static int futex_errno, futex_word_seen;
static double futex_woke;
static int lock_ret = -1;
static double lock_woke;

static void* cv_waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&cv_lock);
  while (!cv_flag) {
    cv_ret = pthread_cond_wait(&cv, &cv_lock);
    if (cv_ret != 0) {
      break;
    }
    if (!cv_flag) {
      spurious++;  // allowed by POSIX; the loop waits again
    }
  }
  cv_woke = e2e_now();
  pthread_mutex_unlock(&cv_lock);
  return NULL;
}

static void* futex_waiter(void* arg) {
  (void)arg;
  futex_ret = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  futex_errno = errno;
  futex_word_seen = atomic_load(&futex_word);
  futex_woke = e2e_now();
  return NULL;
}

static void* lock_waiter(void* arg) {
  (void)arg;
  lock_ret = pthread_mutex_lock(&held);
  lock_woke = e2e_now();
  pthread_mutex_unlock(&held);
  return NULL;
}

static void* waker(void* arg) {
  (void)arg;
  pthread_mutex_lock(&held);
  atomic_store(&waker_holds_mutex, 1);
  while (!atomic_load(&ready_written)) {
    usleep(1000);
  }
  e2e_sleep_until(e2e_ready_time + 1.5);
  wake_time = e2e_now();
  pthread_mutex_unlock(&held);
  pthread_mutex_lock(&cv_lock);
  cv_flag = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&cv_lock);
  atomic_store(&futex_word, 1);
  syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  return NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  pthread_t tw, tc, tf, tl;
  pthread_create(&tw, NULL, waker, NULL);
  while (!atomic_load(&waker_holds_mutex)) {
    usleep(1000);
  }
  pthread_create(&tc, NULL, cv_waiter, NULL);
  pthread_create(&tf, NULL, futex_waiter, NULL);
  pthread_create(&tl, NULL, lock_waiter, NULL);
  usleep(50000);  // all three waiters are blocked before ready
  e2e_ready();
  atomic_store(&ready_written, 1);
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    e2e_interrupt_thread(tf);
  }
  E2E_CHECK(pthread_join(tw, NULL) == 0, "join(waker)");
  pthread_join(tc, NULL);
  pthread_join(tf, NULL);
  pthread_join(tl, NULL);

  E2E_CHECK(futex_ret == 0, "FUTEX_WAIT returned %ld (%s)", futex_ret, strerror(futex_errno));
  E2E_CHECK(futex_word_seen == 1, "FUTEX_WAIT returned while the word was still 0");
  E2E_CHECK(futex_woke >= wake_time, "FUTEX_WAIT returned before the wake");
  E2E_CHECK(cv_ret == 0, "pthread_cond_wait returned %s", strerror(cv_ret));
  E2E_CHECK(cv_woke >= wake_time, "cond waiter left before the signal");
  E2E_CHECK(lock_ret == 0, "pthread_mutex_lock returned %s", strerror(lock_ret));
  E2E_CHECK(lock_woke >= wake_time, "mutex acquired while the waker still held it");
  if (spurious != 0) {
    fprintf(stderr, "note: %d spurious condition variable wakeups (allowed)\n", spurious);
  }
  e2e_pass();
}
