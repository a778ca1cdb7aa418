// Host side (CLI, and the keeper it starts).
#include "keeper/adopt.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "capture/proc_files.h"
#include "keeper/as_user.h"
#include "keeper/host_view.h"
#include "keeper/keeper_state.h"

namespace vos::keeper {

namespace {

[[noreturn]] void fail(int ready_fd, const Error& e) {
  std::string line = "ERR " + e.describe() + "\n";
  (void)!::write(ready_fd, line.data(), line.size());
  ::_exit(1);
}

// The program's vos pty, if it has one: init keeps its master at fd 4 (init_process.h). The
// screen drawn before is gone with the old keeper; from here on it is kept again.
void take_over_console(Keeper& k) {
  UniqueFd init(static_cast<int>(::syscall(SYS_pidfd_open, 1, 0)));
  if (!init.valid()) {
    return;
  }
  UniqueFd master(static_cast<int>(::syscall(SYS_pidfd_getfd, init.get(), 4, 0)));
  char path[128];
  if (!master.valid() || ::ptsname_r(master.get(), path, sizeof path) != 0) {
    return;  // none: the program was started without a terminal
  }
  k.pipes.console_master = master.release();
  k.pipes.console_slave = path;
  k.start_console("");
}

// In the new keeper, inside the program's namespaces.
[[noreturn]] void keeper_for_adopted(const Entry& e, int ready_fd, int host_proc_fd) {
  block_keeper_signals();
  ::prctl(PR_SET_NAME, "vos-keeper");
  ::setsid();  // nothing of the CLI's terminal or process group
  Keeper k;
  k.name = e.name;
  k.pipes.ready_fd = ready_fd;
  k.pipes.entry = e;
  k.host.emplace(HostView::adopt(host_proc_fd));
  if (::kill(e.inner_pid, 0) != 0) {
    fail(ready_fd, user_error("its program (pid {} inside) has ended", e.inner_pid));
  }
  if (auto c = k.open_control(); !c) {
    k.fail_start(c.error());
  }
  k.adopt_program(e.inner_pid);
  take_over_console(k);
  report_running(k);
}

}  // namespace

Result<Entry> served_entry(const std::string& target, bool* took_over) {
  auto entry = find_entry(target);
  if (!entry) {
    return user_error("no program named or with pid '{}' is managed by vos (see vos ps)", target);
  }
  *took_over = false;
  if (keeper_alive(*entry)) {
    return *entry;
  }
  auto adopted = adopt_program(*entry);
  if (adopted) {
    *took_over = true;
  }
  return adopted;
}

Result<Entry> adopt_program(const Entry& e) {
  auto comm = capture::read_text_file(fmt::format("/proc/{}/comm", e.init_pid));
  if (e.init_pid <= 0 || !comm || comm->rfind("vos-init", 0) != 0) {
    return user_error("{}: its keeper and its namespace are gone", e.name);
  }
  UniqueFd init(static_cast<int>(::syscall(SYS_pidfd_open, e.init_pid, 0)));
  if (!init.valid()) {
    return sys_error("{}: opening its namespace's init (host pid {})", e.name, e.init_pid);
  }
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    return sys_error("pipe");
  }
  UniqueFd ready_rd(ready[0]);
  pid_t mid = ::fork();
  if (mid < 0) {
    return sys_error("fork");
  }
  if (mid == 0) {
    ::close(ready[0]);
    auto host = HostView::open();  // before the program's /proc is ours
    if (::geteuid() == 0) {
      // Root takes over a user's program as that user (init runs as the program's user).
      auto ids = ids_of(e.init_pid);
      if (ids && ids->uid != 0) {
        if (auto st = become_user(*ids); !st) {
          fail(ready[1], st.error());
        }
        ::setenv("VOS_RUN_DIR", e.dir.c_str(), 1);
      }
    }
    if (!host) {
      fail(ready[1], host.error());
    }
    // The IPC namespace: the keeper reads the program's System V shared memory in it.
    int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | (::geteuid() != 0 ? CLONE_NEWUSER : 0);
    if (::setns(init.get(), flags) != 0 &&
        (errno != EINVAL || ::setns(init.get(), flags & ~CLONE_NEWIPC) != 0)) {  // no IPC ns
      fail(ready[1], sys_error("entering the namespaces of {}", e.name));
    }
    // Only children join a pid namespace. The keeper is the grandchild: once its parent, the
    // first process here in the namespace, has ended, the kernel makes it a child of the
    // namespace's init, as the first keeper was, so that init outlives it.
    pid_t inside = ::fork();
    if (inside < 0) {
      fail(ready[1], sys_error("fork"));
    }
    if (inside == 0) {
      pid_t k = ::fork();
      if (k < 0) {
        fail(ready[1], sys_error("fork"));
      }
      if (k == 0) {
        while (::getppid() != 1) {  // reparented once `inside` has ended
          ::usleep(100);
        }
        keeper_for_adopted(e, ready[1], host->proc_fd());
      }
      ::_exit(0);
    }
    ::waitpid(inside, nullptr, 0);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::waitpid(mid, nullptr, 0);
  std::string line;
  char buf[512];
  ssize_t n;
  while ((n = ::read(ready_rd.get(), buf, sizeof buf)) > 0) {
    line.append(buf, static_cast<size_t>(n));
    if (line.find('\n') != std::string::npos) {
      break;
    }
  }
  line = line.substr(0, line.find('\n'));
  if (line.rfind("OK ", 0) != 0) {
    return user_error("{}: a new keeper could not take over: {}", e.name,
                      line.rfind("ERR ", 0) == 0 ? line.substr(4) : "it died while starting");
  }
  auto now = find_entry(e.name);
  if (!now) {
    return user_error("{}: the new keeper did not register it", e.name);
  }
  return *now;
}

}  // namespace vos::keeper
