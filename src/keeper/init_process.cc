// Host side (init, pid 1 of the program's pid namespace).
#include "keeper/init_process.h"

#include <fcntl.h>
#include <signal.h>
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

// Only stdio (pointed at /dev/null: the caller's must not be held open by init) and the status
// pipe, moved to fd 3, stay open.
void keep_only_status_fd(int status_fd) {
  if (status_fd != 3) {
    ::dup3(status_fd, 3, O_CLOEXEC);
  }
  ::syscall(SYS_close_range, 4U, ~0U, 0U);
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
  keep_only_status_fd(plan.status_fd);
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
