// e2e case (runs under vos): a C++ program with std::thread workers fed through a
// std::deque guarded by std::mutex + std::condition_variable, results in a std::map, per-thread
// counts in a std::vector, a std::atomic total, thread_local std::strings and a large
// std::vector built before the checkpoint. Everything is recomputed and compared at the end.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "e2e_common.h"

namespace {

constexpr int kWorkers = 4;

uint64_t work(uint64_t i) {
  uint64_t x = i;
  for (int k = 0; k < 100; k++) {
    x = e2e_mix(x);
  }
  return x;
}

std::mutex queue_mutex;
std::condition_variable queue_cv;
std::deque<uint64_t> queue;
bool done = false;

std::mutex results_mutex;
std::map<uint64_t, uint64_t> results;
std::vector<uint64_t> per_thread(kWorkers);
std::atomic<uint64_t> total{0};

thread_local std::string thread_name;

void worker(int id) {
  thread_name = "worker-" + std::to_string(id) + std::string(40, '.');  // heap, not SSO
  const std::string expected_name = thread_name;
  for (;;) {
    uint64_t item;
    {
      std::unique_lock<std::mutex> lock(queue_mutex);
      queue_cv.wait(lock, [] { return done || !queue.empty(); });
      if (queue.empty()) {
        break;
      }
      item = queue.front();
      queue.pop_front();
    }
    uint64_t value = work(item);
    if (e2e_sabotage() && item == 3000) {
      continue;  // a result lost across the restore
    }
    {
      std::lock_guard<std::mutex> lock(results_mutex);
      E2E_CHECK(results.emplace(item, value).second, "item %llu processed twice",
                static_cast<unsigned long long>(item));
      per_thread[id]++;
    }
    total.fetch_add(1, std::memory_order_relaxed);
  }
  E2E_CHECK(thread_name == expected_name, "thread_local of worker %d changed", id);
}

}  // namespace

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  std::vector<uint64_t> big(1 << 20);
  for (size_t i = 0; i < big.size(); i++) {
    big[i] = e2e_mix(i ^ 0xc0ffee);
  }
  std::map<uint64_t, std::string> names;
  for (uint64_t i = 0; i < 1000; i++) {
    names[e2e_mix(i)] = "name number " + std::to_string(i);
  }

  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; i++) {
    threads.emplace_back(worker, i);
  }
  e2e_ready();
  const double stop = e2e_ready_time + 2.0;
  uint64_t produced = 0;
  while (e2e_now() < stop) {
    {
      std::lock_guard<std::mutex> lock(queue_mutex);
      for (int k = 0; k < 16; k++) {
        queue.push_back(produced++);
      }
    }
    queue_cv.notify_all();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  {
    std::lock_guard<std::mutex> lock(queue_mutex);
    done = true;
  }
  queue_cv.notify_all();
  for (auto& t : threads) {
    t.join();
  }

  E2E_CHECK(produced > 5000, "only %llu items produced", static_cast<unsigned long long>(produced));
  E2E_CHECK(results.size() == produced, "%zu results for %llu items", results.size(),
            static_cast<unsigned long long>(produced));
  uint64_t next = 0;
  for (const auto& [key, value] : results) {
    E2E_CHECK(key == next, "result %llu missing", static_cast<unsigned long long>(next));
    E2E_CHECK(value == work(key), "result %llu wrong", static_cast<unsigned long long>(key));
    next++;
  }
  uint64_t sum = 0;
  for (uint64_t c : per_thread) {
    sum += c;
  }
  E2E_CHECK(sum == produced && total.load() == produced, "counts %llu/%llu, want %llu",
            static_cast<unsigned long long>(sum), static_cast<unsigned long long>(total.load()),
            static_cast<unsigned long long>(produced));
  for (size_t i = 0; i < big.size(); i++) {
    E2E_CHECK(big[i] == e2e_mix(i ^ 0xc0ffee), "big vector element %zu differs", i);
  }
  E2E_CHECK(names.size() == 1000, "names map has %zu entries", names.size());
  for (uint64_t i = 0; i < 1000; i++) {
    auto it = names.find(e2e_mix(i));
    E2E_CHECK(it != names.end() && it->second == "name number " + std::to_string(i),
              "names map entry %llu differs", static_cast<unsigned long long>(i));
  }
  e2e_pass();
}
