// The scheduling classes vos's threads take while they work beside a running program
// (src/base/cpu_class.h), read back through the kernel.
#include "base/cpu_class.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace vos::cpu_class {
namespace {

pid_t tid() {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

TEST(CpuClass, AllThreadsButCriticalOnesGoToTheBackgroundAndBack) {
  if (background_kind() == Kind::kOff) {
    GTEST_SKIP() << "threads cannot come back from the background here (no CAP_SYS_NICE)";
  }
  std::atomic<pid_t> worker{0}, critical{0};
  std::atomic<bool> stop{false};
  std::thread w([&] {
    worker = tid();
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::thread c([&] {
    CriticalThread mark;
    critical = tid();
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  while (worker == 0 || critical == 0) {
    std::this_thread::yield();
  }
  all_threads_to_background();
  EXPECT_EQ(describe_thread(worker), "idle nice 0");
  EXPECT_EQ(describe_thread(tid()), "idle nice 0");
  EXPECT_EQ(describe_thread(critical), "other nice 0");
  // A thread started now inherits the class of the one that starts it.
  std::string child;
  std::thread([&] { child = describe_thread(tid()); }).join();
  EXPECT_EQ(child, "idle nice 0");
  all_threads_to_foreground();
  EXPECT_EQ(describe_thread(worker), "other nice 0");
  EXPECT_EQ(describe_thread(tid()), "other nice 0");
  stop = true;
  w.join();
  c.join();
}

// When every CPU is busy with other work, idle-class threads would barely run: the guard brings
// them back to the foreground.
TEST(CpuClass, StarvedBackgroundThreadsComeBack) {
  if (background_kind() == Kind::kOff) {
    GTEST_SKIP() << "threads cannot come back from the background here (no CAP_SYS_NICE)";
  }
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  std::vector<pid_t> hogs;
  for (long i = 0; i < cpus; ++i) {
    pid_t p = ::fork();
    if (p == 0) {
      for (;;) {
      }
    }
    hogs.push_back(p);
  }
  std::string summary;
  {
    StarvationGuard guard;
    all_threads_to_background();
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < until && describe_thread(tid()) != "other nice 0") {
      // Busy: wants the CPU the hogs hold.
    }
    summary = guard.summary();
    // Once starved, the checkpoint's later switches to the background are ignored.
    all_threads_to_background();
    EXPECT_EQ(describe_thread(tid()), "other nice 0");
  }
  for (pid_t p : hogs) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
  all_threads_to_foreground();
  EXPECT_NE(summary.find("normal after"), std::string::npos) << summary;
  // The guard gone, the next checkpoint may use the background again.
  all_threads_to_background();
  EXPECT_EQ(describe_thread(tid()), "idle nice 0");
  all_threads_to_foreground();
}

}  // namespace
}  // namespace vos::cpu_class
