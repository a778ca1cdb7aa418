// Host side (the first process of a restored tree, and each process it creates, before the blob).
// The kernel ties parent, session and process group to how a process was created, so the tree
// is rebuilt in that order: each process is created by its parent (orphans by the first process,
// with CLONE_PARENT: init's children, as they were), with its pid (clone3 set_tid); a session
// leader calls setsid and a group leader setpgid before it creates anything, the others join
// their groups once every process exists; zombies end last, with their saved status, for their
// parents to collect. The keeper paces the steps (TreePipes) and seizes every process before any
// of them can run program code.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "abi/kernel_uapi.h"
#include "capture/proc_files.h"
#include "fds/fd_kind.h"
#include "restore/restore.h"
#include "restore/sysv_sem_msg_restore.h"
#include "restore/sysv_shm_restore.h"
#include "restore/terminal_restore.h"

namespace vos::restore {

namespace {

[[noreturn]] void die(int log_fd, const Error& e) {
  std::string msg = e.describe() + "\n";
  (void)!::write(log_fd, msg.data(), msg.size());
  ::_exit(70);
}

// A session or group of 0 is outside the namespace (vos run's caller's), 1 vos's own (init's): the
// process gets whichever the restore is in.
bool vos_given(pid_t id) {
  return id == 0 || id == 1;
}

struct Stage {
  LoadedImage& img;
  int info_fd, log_fd;
  TreePipes pipes;
  TreeShared shared;
  std::vector<image::ProcessImage> others;  // the tree but its first process
  std::vector<image::SysvShm> segments;     // the namespace's, made by the first process
  pid_t top = 0;
  image::ConsoleState console;  // the program's vos pty (the first process's image has it)
};

// Says `pid` reached a step and waits for the keeper's go on `go`; the keeper gone, gives up.
void barrier(const Stage& s, int go) {
  int32_t pid = ::getpid();
  char c = 0;
  if (::write(s.pipes.up, &pid, sizeof pid) != sizeof pid || ::read(go, &c, 1) != 1) {
    ::_exit(70);
  }
}

// The objects several processes share, made once (above every fd number of every process).
Status make_shared_objects(Stage& s) {
  image::ProcessImage shared;  // one FdState per shared object, as its first holder has it
  int top = 2;
  auto add = [&](const image::ProcessImage& p) {
    for (const auto& f : p.fds) {
      top = std::max(top, f.fd);
      if (f.tree_desc != 0 && f.dup_of < 0 &&
          std::none_of(shared.fds.begin(), shared.fds.end(),
                       [&](const image::FdState& o) { return o.tree_desc == f.tree_desc; })) {
        shared.fds.push_back(f);
      }
    }
  };
  add(s.img.proc);
  for (const auto& p : s.others) {
    add(p);
  }
  fds::RestorePolicy policy = s.img.policy;
  policy.proc = &shared;
  fds::FdRecreate r{shared, s.img.blobs, policy};
  r.above = top + 1;
  for (int i = 0; i < 3; ++i) {
    r.stdio_copy[i] = ::fcntl(i, F_DUPFD_CLOEXEC, r.above);
  }
  Status st;
  for (const auto& f : shared.fds) {
    auto found = fds::handler_of(f);
    if (!found) {
      st = std::move(found).error();
      break;
    }
    auto fd = (*found)->recreate(r, f);
    if (!fd) {
      st = std::move(fd).error().context(fmt::format("shared object {} ({} {})", f.tree_desc,
                                                     image::fd_kind_name(f.kind), f.path));
      break;
    }
    int kept = ::fcntl(*fd, F_DUPFD_CLOEXEC, r.above);
    ::close(*fd);
    if (kept < 0) {
      st = sys_error("keeping shared object {}", f.tree_desc);
      break;
    }
    s.shared.fds[f.tree_desc] = kept;
  }
  for (auto& [key, fds] : r.shared) {
    for (int fd : fds) {
      ::close(fd);
    }
  }
  for (int fd : r.stdio_copy) {
    ::close(fd);
  }
  return st;
}

// Shared anonymous memory (MemoryArea::shared_object): each object made once, in one staging
// range free in every process's layout, and filled with the pages stored for it; the processes
// inherit the range and each maps the objects again where it had them.
Status make_shared_memory(Stage& s) {
  std::map<uint32_t, uint64_t> sizes;
  std::vector<std::pair<uint64_t, uint64_t>> used;
  auto scan = [&](const image::ProcessImage& p) {
    for (const auto& a : p.areas) {
      used.emplace_back(a.start, a.end);
      if (a.shared_object != 0) {
        auto& size = sizes[a.shared_object];
        size = std::max(size, a.file_offset + (a.end - a.start));
      }
    }
  };
  scan(s.img.proc);
  for (const auto& p : s.others) {
    scan(p);
  }
  if (sizes.empty()) {
    return {};
  }
  uint64_t total = 0;
  for (const auto& [id, size] : sizes) {
    total += size;
  }
  auto self = capture::read_maps(::getpid());
  if (!self) {
    return std::move(self).error();
  }
  for (const auto& m : *self) {
    used.emplace_back(m.start, m.end);
  }
  std::sort(used.begin(), used.end());
  constexpr uint64_t kAlign = 2ull << 20, kTop = 0x7ffffffff000ull;
  uint64_t at = 0x200000000ull;  // above where programs usually are, below the libraries
  for (const auto& [from, to] : used) {
    if (to <= at) {
      continue;
    }
    if (from >= at + total) {
      break;
    }
    at = (to + kAlign - 1) / kAlign * kAlign;
  }
  if (at + total > kTop) {
    return user_error("no free address range of {} bytes for the tree's shared memory", total);
  }
  s.shared.staging_start = at;
  s.shared.staging_end = at + total;
  for (const auto& [id, size] : sizes) {
    void* m = ::mmap(reinterpret_cast<void*>(at), size, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED) {
      return sys_error("making shared memory object {} ({} bytes)", id, size);
    }
    s.shared.memory[id] = at;
    at += size;
  }
  auto fill = [&](const image::ProcessImage& p) -> Status {
    for (const auto& a : p.areas) {
      if (a.shared_object == 0) {
        continue;
      }
      uint64_t base = s.shared.memory.at(a.shared_object) + a.file_offset;
      for (const auto& r : a.pages) {
        auto* to = reinterpret_cast<char*>(base + (r.vaddr - a.start));
        uint64_t len = r.npages * 4096, done = 0;
        while (done < len) {
          ssize_t n = ::pread(s.img.pages.fd, to + done, len - done,
                              static_cast<off_t>(s.img.pages.base + r.offset + done));
          if (n <= 0) {
            return sys_error("reading the pages of shared memory at {:#x}", r.vaddr);
          }
          done += static_cast<uint64_t>(n);
        }
      }
    }
    return {};
  };
  VOS_TRY(fill(s.img.proc), "process {}", s.img.proc.pid);
  for (const auto& p : s.others) {
    VOS_TRY(fill(p), "process {}", p.pid);
  }
  return {};
}

[[noreturn]] void zombie_end(const image::ProcessImage& p, const Stage& s) {
  char c = 0;
  while (::read(s.pipes.die, &c, 1) > 0) {
  }
  int st = p.exit_status;
  if (WIFSIGNALED(st)) {
    rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);  // a core dump would be a file the program never made
    ::signal(WTERMSIG(st), SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, WTERMSIG(st));
    ::sigprocmask(SIG_UNBLOCK, &one, nullptr);
    ::syscall(SYS_kill, ::getpid(), WTERMSIG(st));
  }
  ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

[[noreturn]] void become_member(Stage& s, const image::ProcessImage& p);

// Which process creates `q`: its parent; for a child of init (made with CLONE_PARENT), the
// leader of its session when that is a child of init too (a helper for an ended leader, or a
// daemon that called setsid), so that `q` starts in that session; else the first process.
pid_t creator_of(const Stage& s, const image::ProcessImage& q) {
  if (q.ppid != 1) {
    return q.ppid;
  }
  if (q.sid != q.pid && !vos_given(q.sid)) {
    for (const auto& l : s.others) {
      if (l.pid == q.sid && l.ppid == 1) {
        return l.pid;
      }
    }
  }
  return s.top;
}

// Creates the children of `parent` (and the children of init it is to make), those for which
// `now` holds.
void create_children(Stage& s, pid_t parent, const auto& now) {
  for (const auto& q : s.others) {
    bool mine = creator_of(s, q) == parent;
    if (!mine || !now(q)) {
      continue;
    }
    uint64_t want = static_cast<uint64_t>(q.pid);
    uapi::CloneArgs ca{};
    // clone3 refuses an exit signal with CLONE_PARENT (EINVAL): the child then gets its
    // creator's, SIGCHLD, as every process of the tree has. Without SIGCHLD in the call the
    // kernel counts it as a thread-like clone, which the keeper's PTRACE_O_TRACECLONE on the
    // first process would catch and stop: untraced, like a fork (the keeper seizes it later).
    ca.flags = q.ppid == 1 ? CLONE_PARENT | CLONE_UNTRACED : 0;
    ca.exit_signal = q.ppid == 1 ? 0 : SIGCHLD;
    ca.set_tid = reinterpret_cast<uint64_t>(&want);
    ca.set_tid_size = 1;
    long child = ::syscall(SYS_clone3, &ca, sizeof ca);
    if (child < 0) {
      die(s.log_fd, sys_error("creating process {} (child of {})", q.pid, q.ppid));
    }
    if (child == 0) {
      become_member(s, q);
    }
  }
}

// Session and group first (before any child, which inherits them); then the children; then the
// steps every process takes together.
[[noreturn]] void build(Stage& s, const image::ProcessImage& p, bool first) {
  if (first) {
    // init's children that stay in the session and group the first process is restored into
    // (vos restore's), made before it may leave them.
    create_children(s, p.pid, [&](const image::ProcessImage& q) {
      return q.ppid == 1 && (vos_given(q.sid) || vos_given(q.pgid));
    });
  }
  if (p.sid == p.pid && ::getsid(0) != p.pid && ::setsid() < 0) {
    die(s.log_fd, sys_error("process {}: setsid", p.pid));
  }
  if (auto st = take_console(s.console, s.img.policy.console_path); !st) {
    die(s.log_fd, st.error());
  }
  if (p.sid != p.pid && p.pgid == p.pid && ::setpgid(0, 0) != 0) {
    die(s.log_fd, sys_error("process {}: setpgid", p.pid));
  }
  create_children(s, p.pid, [&](const image::ProcessImage& q) {
    return !(first && q.ppid == 1 && (vos_given(q.sid) || vos_given(q.pgid)));
  });
  barrier(s, s.pipes.go_members);  // every process exists, and the keeper traces them
  if (!vos_given(p.pgid) && p.pgid != p.pid && ::getpgid(0) != p.pgid &&
      ::setpgid(0, p.pgid) != 0) {
    die(s.log_fd, sys_error("process {}: joining process group {}", p.pid, p.pgid));
  }
  int32_t pid = ::getpid();
  if (::write(s.pipes.up, &pid, sizeof pid) != sizeof pid) {
    ::_exit(70);
  }
  if (p.zombie) {
    zombie_end(p, s);
  }
  char c = 0;
  if (::read(s.pipes.go_program, &c, 1) != 1) {
    ::_exit(70);
  }
  std::vector<int> helpers = {s.pipes.up, s.pipes.go_members, s.pipes.go_program, s.pipes.die};
  if (!first) {
    s.img.proc = p;
    s.img.proc.sysv_shm = s.segments;
    for (auto& seg : s.img.proc.sysv_shm) {
      seg.removed = false;  // marked again by the first process only
    }
    s.img.proc.tty_foreground = false;
    s.img.proc.console = s.console;  // for the session leader, if it is this one
  }
  become_this_process(s.img, s.info_fd, s.log_fd, helpers, &s.shared, !first);
}

void become_member(Stage& s, const image::ProcessImage& p) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  build(s, p, false);
}

}  // namespace

void become_tree(LoadedImage& img, int sync_fd, int info_fd, int log_fd, TreePipes pipes) {
  char go = 0;
  if (::read(sync_fd, &go, 1) != 1) {
    ::_exit(70);  // the keeper is gone
  }
  ::close(sync_fd);
  // Signals that reach a process during the restore (a zombie's SIGCHLD) wait, blocked, and the
  // blob drops them: the program's own pending signals come from the image.
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  Stage s{img,
          info_fd,
          log_fd,
          pipes,
          {},
          std::move(img.proc.processes),
          img.proc.sysv_shm,
          img.proc.pid,
          img.proc.console};
  img.proc.processes.clear();
  s.shared.max_id = img.proc.pid;
  for (const auto& p : s.others) {
    s.shared.max_id = std::max(s.shared.max_id, p.pid);
    for (const auto& t : p.threads) {
      s.shared.max_id = std::max(s.shared.max_id, t.tid);
    }
  }
  for (const auto& t : img.proc.threads) {
    s.shared.max_id = std::max(s.shared.max_id, t.tid);
  }
  if (auto st = make_shared_objects(s); !st) {
    die(log_fd, st.error());
  }
  if (auto st = make_shared_memory(s); !st) {
    die(log_fd, st.error());
  }
  std::vector<int> parent_fds;
  for (const auto& p : img.parents) {
    parent_fds.push_back(p.pages.fd);
  }
  // The namespace's System V segments, before any process could attach one.
  if (auto st = recreate_sysv_shm(img, img.pages.fd, parent_fds); !st) {
    die(log_fd, st.error());
  }
  if (auto st = recreate_sysv_sem_msg(img.proc); !st) {
    die(log_fd, st.error());
  }
  build(s, img.proc, true);
}

}  // namespace vos::restore
