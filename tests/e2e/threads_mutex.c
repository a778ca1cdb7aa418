// e2e case (runs under vos): 2 producers and 3 consumers share a bounded queue guarded by one
// mutex and two condition variables for ~2 s. Threads are blocked in futex waits most of the
// time, so the checkpoint catches several of them mid-wait. Every index must be consumed exactly
// once and the sums must equal the value recomputed from the number of items produced.
#define _GNU_SOURCE  // before any libc header
#include "e2e_common.h"

enum { kProducers = 2, kConsumers = 3, kQueueSize = 8, kMaxItems = 1 << 22, kWork = 200 };

struct Item {
  uint64_t index;
  uint64_t value;  // work(index), recomputed and compared by the consumer
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static struct Item queue[kQueueSize];
static unsigned head, count;
static uint64_t next_index;  // items handed out to producers
static int producers_done;
static double stop_time;
static unsigned char seen[kMaxItems / 8];
static uint64_t sum, xor_sum, consumed;

static uint64_t work(uint64_t i) {
  uint64_t x = i;
  for (int k = 0; k < kWork; k++) {
    x = e2e_mix(x);
  }
  return x;
}

static void* producer(void* arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    if (e2e_now() >= stop_time || next_index == kMaxItems) {
      producers_done++;
      pthread_cond_broadcast(&not_empty);
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    uint64_t i = next_index++;
    pthread_mutex_unlock(&lock);

    struct Item it = {i, work(i)};
    struct timespec pace = {0, 20000};  // keep the queue mostly empty so consumers block
    nanosleep(&pace, NULL);

    pthread_mutex_lock(&lock);
    while (count == kQueueSize) {
      E2E_CHECK(pthread_cond_wait(&not_full, &lock) == 0, "cond_wait(not_full)");
    }
    queue[(head + count) % kQueueSize] = it;
    count++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
  }
}

static void* consumer(void* arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (count == 0 && producers_done < kProducers) {
      E2E_CHECK(pthread_cond_wait(&not_empty, &lock) == 0, "cond_wait(not_empty)");
    }
    if (count == 0) {
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    struct Item it = queue[head];
    head = (head + 1) % kQueueSize;
    count--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&lock);

    E2E_CHECK(it.index < kMaxItems, "bad index %llu", (unsigned long long)it.index);
    E2E_CHECK(work(it.index) == it.value, "item %llu carries a wrong value",
              (unsigned long long)it.index);
    pthread_mutex_lock(&lock);
    int lost = e2e_sabotage() && it.index == 5000;  // an item lost across the restore
    if (!lost) {
      E2E_CHECK(!(seen[it.index / 8] & (1u << (it.index % 8))), "item %llu consumed twice",
                (unsigned long long)it.index);
      seen[it.index / 8] |= (unsigned char)(1u << (it.index % 8));
      sum += it.value;
      xor_sum ^= it.value * (it.index | 1);
      consumed++;
    }
    pthread_mutex_unlock(&lock);
  }
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  stop_time = e2e_now() + 1e9;  // set for real once ready is written
  pthread_t prod[kProducers], cons[kConsumers];
  pthread_mutex_lock(&lock);
  for (int i = 0; i < kProducers; i++) {
    pthread_create(&prod[i], NULL, producer, NULL);
  }
  for (int i = 0; i < kConsumers; i++) {
    pthread_create(&cons[i], NULL, consumer, NULL);
  }
  e2e_ready();
  stop_time = e2e_ready_time + 2.0;
  pthread_mutex_unlock(&lock);

  for (int i = 0; i < kProducers; i++) {
    pthread_join(prod[i], NULL);
  }
  for (int i = 0; i < kConsumers; i++) {
    pthread_join(cons[i], NULL);
  }

  // Recompute what the consumers should have seen from the number of items handed out.
  uint64_t n = next_index, want_sum = 0, want_xor = 0;
  E2E_CHECK(n > 1000, "only %llu items produced", (unsigned long long)n);
  for (uint64_t i = 0; i < n; i++) {
    E2E_CHECK(seen[i / 8] & (1u << (i % 8)), "item %llu of %llu never consumed",
              (unsigned long long)i, (unsigned long long)n);
    uint64_t v = work(i);
    want_sum += v;
    want_xor ^= v * (i | 1);
  }
  E2E_CHECK(consumed == n, "consumed %llu of %llu", (unsigned long long)consumed,
            (unsigned long long)n);
  E2E_CHECK(sum == want_sum && xor_sum == want_xor, "checksum mismatch over %llu items",
            (unsigned long long)n);
  e2e_pass();
}
