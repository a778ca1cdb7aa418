// Host side (init, pid 1 of the program's pid namespace).
#include "keeper/init_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "keeper/host_view.h"
#include "keeper/namespaces.h"

namespace vos::keeper {

namespace {

[[noreturn]] void fail(const InitPlan& plan, const Error& e) {
  std::string line = "ERR " + e.describe() + "\n";
  (void)!::write(plan.ready_fd, line.data(), line.size());
  ::_exit(1);
}

// Only stdio (pointed at /dev/null: the caller's must not be held open by init), the status
// pipe, moved to fd 3, and the pty master at fd 4 stay open.
void keep_only_status_fd(int status_fd, int console_master) {
  // (Out of the way first: the moves below must not land on it.)
  if (console_master >= 0) {
    console_master = ::fcntl(console_master, F_DUPFD_CLOEXEC, 100);
  }
  if (status_fd != 3) {
    ::dup3(status_fd, 3, O_CLOEXEC);
  }
  unsigned first_closed = 4;
  if (console_master >= 0) {
    ::dup3(console_master, 4, O_CLOEXEC);
    first_closed = 5;
  }
  ::syscall(SYS_close_range, first_closed, ~0U, 0U);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd <= 2 && null_fd >= 0; ++fd) {
    ::dup3(null_fd, fd, 0);
  }
  if (null_fd > 3) {
    ::close(null_fd);
  }
}

}  // namespace

void run_init(const InitPlan& plan, const std::function<void(int host_proc_fd)>& keeper) {
  ::prctl(PR_SET_NAME, "vos-init");
  if (plan.own_session) {
    ::setsid();
  }
  // The program's vos pty is the controlling terminal of init's session, as a terminal emulator's
  // is its shell's: the keeper (forked below) inherits it, and the program, a job in this session,
  // from the keeper. A program started from a shell is not a session leader either.
  if (plan.console_master >= 0) {
    char slave[128];
    if (::ptsname_r(plan.console_master, slave, sizeof slave) == 0) {
      int fd = ::open(slave, O_RDWR | O_CLOEXEC);  // (no O_NOCTTY: this makes it ours)
      if (fd >= 0) {
        ::ioctl(fd, TIOCSCTTY, 0);
        ::close(fd);
      }
    }
  }
  // A pid namespace's init gets no signal it has no handler for from inside the namespace; a
  // status pipe whose reader is gone must not end it either.
  ::signal(SIGPIPE, SIG_IGN);
  auto host = HostView::open();
  if (!host) {
    fail(plan, host.error());
  }
  if (auto m = setup_namespace_mounts(); !m) {
    fail(plan, m.error());
  }
  pid_t k = ::fork();
  if (k < 0) {
    fail(plan, sys_error("starting the keeper"));
  }
  if (k == 0) {
    ::prctl(PR_SET_NAME, "vos-keeper");
    keeper(host->proc_fd());
    ::_exit(1);
  }
  keep_only_status_fd(plan.status_fd, plan.console_master);
  ::fcntl(3, F_SETFL, O_NONBLOCK);
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(-1, &status, __WALL);
    if (r > 0) {
      ReapedChild rec{r, status};
      (void)!::write(3, &rec, sizeof rec);
    } else if (errno == ECHILD) {
      ::_exit(0);
    }
  }
}

}  // namespace vos::keeper
