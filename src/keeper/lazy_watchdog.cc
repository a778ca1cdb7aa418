// Host side (keeper).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keeper/keeper_state.h"

namespace vos::keeper {

Status start_lazy_watchdog(Keeper& k) {
  pid_t keeper = ::getpid();
  pid_t w = ::fork();
  if (w < 0) {
    return sys_error("starting the lazy restore's watchdog");
  }
  if (w == 0) {
    // Only async-signal-safe calls: the keeper may have threads.
    ::prctl(PR_SET_NAME, "vos-lazy-guard");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    ::syscall(SYS_close_range, 0U, ~0U, 0U);
    ::prctl(PR_SET_PDEATHSIG, SIGUSR1);
    if (::getppid() == keeper) {  // else the keeper died before the line above
      int sig = 0;
      ::sigwait(&set, &sig);
    }
    // Every process of the program, those it forked since included: the watchdog is in its pid
    // namespace, and kill(-1) spares the caller and the namespace's init.
    ::kill(-1, SIGKILL);
    ::_exit(0);
  }
  k.lazy_watchdog = w;
  if (k.watch) {
    k.watch->add_helper(w);
  }
  return {};
}

void stop_lazy_watchdog(Keeper& k) {
  if (k.lazy_watchdog > 0) {
    ::kill(k.lazy_watchdog, SIGKILL);
    ::waitpid(k.lazy_watchdog, nullptr, 0);
    if (k.watch) {
      k.watch->remove_helper(k.lazy_watchdog);
    }
    k.lazy_watchdog = 0;
  }
}

void reap_helpers(Keeper& k) {
  if (k.lazy_watchdog > 0 && ::waitpid(k.lazy_watchdog, nullptr, WNOHANG) == k.lazy_watchdog) {
    if (k.watch) {
      k.watch->remove_helper(k.lazy_watchdog);
    }
    k.lazy_watchdog = 0;
  }
}

}  // namespace vos::keeper
