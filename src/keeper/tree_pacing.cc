// Host side (keeper).
#include "keeper/tree_pacing.h"

#include <poll.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include "capture/tree_freeze.h"

namespace vos::keeper {

namespace {

constexpr int kStepTimeoutMs = 60000;

// Reads exactly `size` bytes from `fd`, failing if a process wrote to the log pipe instead (it
// gave up) or nothing came for a minute. Several processes hold the write end, so one that died
// does not end the pipe.
Status read_step(int fd, int log_fd, void* out, size_t size, const char* what) {
  auto* p = static_cast<char*>(out);
  size_t got = 0;
  while (got < size) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {log_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, kStepTimeoutMs);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return user_error("restore of the process tree: no process reached {} in time", what);
    }
    if ((fds[1].revents & POLLIN) != 0) {
      return user_error("a process of the tree gave up before {}", what);
    }
    ssize_t r = ::read(fd, p + got, size - got);
    if (r <= 0) {
      return user_error("restore of the process tree: pipe closed before {}", what);
    }
    got += static_cast<size_t>(r);
  }
  return {};
}

Status read_pids(int fd, int log_fd, size_t count, const char* what) {
  std::vector<int32_t> pids(count);
  return read_step(fd, log_fd, pids.data(), count * sizeof(int32_t), what);
}

Status write_bytes(int fd, size_t count) {
  std::string go(count, 'g');
  if (::write(fd, go.data(), go.size()) != static_cast<ssize_t>(go.size())) {
    return sys_error("pacing the restored processes");
  }
  return {};
}

}  // namespace

Result<std::vector<restore::RestoredProcess>> pace_tree_restore(const restore::LoadedImage& img,
                                                                pid_t root, TreePacing& pipes,
                                                                int info_fd, int log_fd) {
  std::vector<const image::ProcessImage*> all = {&img.proc};
  for (const auto& p : img.proc.processes) {
    all.push_back(&p);
  }
  size_t live = 0;
  for (const auto* p : all) {
    live += p->zombie ? 0 : 1;
  }
  VOS_TRY(read_pids(pipes.up, log_fd, all.size(), "being created"), "restore");
  // Traced before any of them may run program code (EXITKILL: a keeper that dies takes the
  // half-built tree with it; the image is still there).
  for (const auto* p : all) {
    if (p->pid != root && !p->zombie &&
        ::ptrace(PTRACE_SEIZE, p->pid, 0,
                 PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) != 0) {
      return sys_error("ptrace seize of restored process {}", p->pid);
    }
  }
  VOS_TRY(write_bytes(pipes.go_members, all.size()), "restore");
  VOS_TRY(read_pids(pipes.up, log_fd, all.size(), "joining its process group"), "restore");
  // The zombies end now, while their parents cannot yet take their SIGCHLD (blocked, then
  // dropped by the blob: the program had it before the checkpoint).
  ::close(pipes.die);
  pipes.die = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (const auto* p : all) {
    if (!p->zombie) {
      continue;
    }
    while (true) {
      auto st = capture::read_tree_stat(p->pid);
      // A helper's parent is init, which may have reaped it already.
      if ((st && st->state == 'Z') || (!st && p->helper)) {
        break;
      }
      if (!st || std::chrono::steady_clock::now() > deadline) {
        return user_error("restored zombie {} did not end as it should", p->pid);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  VOS_TRY(write_bytes(pipes.go_program, live), "restore");
  std::vector<restore::RestoredProcess> out;
  std::map<pid_t, restore::RegionInfo> regions;
  for (size_t i = 0; i < live; ++i) {
    restore::RegionInfo r;
    VOS_TRY(read_step(info_fd, log_fd, &r, sizeof r, "its restorer"), "restore");
    regions[static_cast<pid_t>(r.pid)] = r;
  }
  for (const auto* p : all) {
    if (p->zombie) {
      continue;
    }
    auto it = regions.find(p->pid);
    if (it == regions.end()) {
      return user_error("restored process {} did not report its restorer", p->pid);
    }
    out.push_back({p->pid, p, it->second});
  }
  return out;
}

}  // namespace vos::keeper
