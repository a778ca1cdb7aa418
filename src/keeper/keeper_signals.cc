// Host side (keeper).
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "keeper/keeper_state.h"

namespace vos::keeper {

namespace {

sigset_t keeper_set() {
  sigset_t set;
  sigfillset(&set);
  // Faults stay deliverable: a keeper that crashes must die (its death is safe), not spin.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) {
    sigdelset(&set, sig);
  }
  return set;
}

}  // namespace

void block_keeper_signals() {
  sigset_t set = keeper_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

UniqueFd keeper_signalfd() {
  sigset_t set = keeper_set();
  return UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
}

void forward_signals(const Keeper& k, int sigfd) {
  signalfd_siginfo si{};
  while (::read(sigfd, &si, sizeof si) == sizeof si) {
    int sig = static_cast<int>(si.ssi_signo);
    // SIGCHLD is the keeper's own; a terminal's signals (SI_KERNEL) went to the program's
    // process group already, if the keeper got them at all.
    if (sig == SIGCHLD || sig == SIGPIPE || si.ssi_code > 0 || !k.watch || !k.watch->root_alive()) {
      continue;
    }
    ::kill(k.program, sig);
  }
}

}  // namespace vos::keeper
