// Host side (keeper). Whether vos's own threads may take a CPU from the program. A live
// checkpoint copies and writes while the program runs, on the same cores: at normal priority
// vos's threads preempt the program (on 2 cores, one spinning program felt 12-26 ms stalls
// while vos counted 0.5-3 ms of stops). While the program runs, every keeper thread is put in
// the background class (SCHED_IDLE by default), and back in the foreground before the freeze,
// when the program is stopped and every millisecond vos spends is the program's pause.
//
// Threads the program itself waits on (the write tracker's mremap reader, the lazy-restore fault
// server) are marked critical and never moved to the background.
#pragma once

#include <sys/types.h>

#include <string>

namespace vos::cpu_class {

enum class Kind {
  kIdle,   // SCHED_IDLE: runs only on a CPU nothing else wants (default)
  kBatch,  // SCHED_BATCH at nice 19
  kNice,   // SCHED_OTHER at nice 19
  kOff,    // vos's threads keep the program's priority
};

// VOS_BACKGROUND_CPU=idle|batch|nice|off (for measuring the choice; default idle). Background is
// also off when the keeper could not come back to the foreground (no CAP_SYS_NICE): it would
// otherwise stay idle-class through the next freeze.
Kind background_kind();
const char* kind_name(Kind k);

// Marks the calling thread, while it lives, as one the program waits on: never put in the
// background (and brought to the foreground if it was created by a thread in the background).
class CriticalThread {
 public:
  CriticalThread();
  ~CriticalThread();
  CriticalThread(const CriticalThread&) = delete;
  CriticalThread& operator=(const CriticalThread&) = delete;

 private:
  pid_t tid_;
};

// Every thread of this process but the critical ones, to the background or back. Threads created
// meanwhile inherit their creator's class. Failures are ignored: a class is a wish, not state.
void all_threads_to_background();
void all_threads_to_foreground();

// While it lives, the process's threads are in the background; back in the foreground after.
class Background {
 public:
  Background() { all_threads_to_background(); }
  ~Background() { all_threads_to_foreground(); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
};

// While it lives, watches the background threads: if one waited for a CPU more than 90% of a
// 100 ms window (the program leaves no CPU free: it keeps every core busy), every thread goes
// back to the foreground until it ends. Idle-class work would otherwise barely progress (a
// 1 GiB checkpoint of a program spinning on both of 2 cores took 23-56 s instead of 1.3-2.4 s),
// and such a program's own jitter is as large as what vos then takes from it.
class StarvationGuard {
 public:
  StarvationGuard();
  ~StarvationGuard();
  StarvationGuard(const StarvationGuard&) = delete;
  StarvationGuard& operator=(const StarvationGuard&) = delete;
  // How the checkpoint's background work ran: "idle", or "idle, normal after 400 ms (no CPU
  // left free)", "off".
  std::string summary() const;

 private:
  struct State;
  State* state_;
};

// The class of thread `tid` of this process as /proc says (policy name and nice), for tests.
std::string describe_thread(pid_t tid);

}  // namespace vos::cpu_class
