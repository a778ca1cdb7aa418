// Host side (keeper).
#include "capture/tree_checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "base/cpu_class.h"
#include "capture/capture_context.h"
#include "capture/incremental.h"
#include "capture/page_writer.h"
#include "capture/proc_files.h"
#include "capture/snapshot.h"
#include "capture/sysv_shm_capture.h"
#include "capture/tree_freeze.h"
#include "image/finish_image.h"

namespace vos::capture {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

constexpr int kKcmpFile = 0;

// The descriptors a process holds, as the other processes of its tree see them from outside.
std::vector<std::pair<std::string, int>> fd_ends(pid_t pid) {
  std::vector<std::pair<std::string, int>> out;
  auto all = fds::probe_fds(pid);
  if (all) {
    for (const auto& f : all->fds) {
      out.emplace_back(f.link, f.flags & O_ACCMODE);
    }
  }
  return out;
}

// For each process, what the others hold.
std::map<pid_t, std::vector<std::pair<std::string, int>>> ends_elsewhere(
    const std::vector<pid_t>& pids) {
  std::map<pid_t, std::vector<std::pair<std::string, int>>> own, out;
  for (pid_t p : pids) {
    own[p] = fd_ends(p);
  }
  for (pid_t p : pids) {
    auto& v = out[p];
    for (pid_t q : pids) {
      if (q != p) {
        v.insert(v.end(), own[q].begin(), own[q].end());
      }
    }
  }
  return out;
}

// Parents before their children (the order a restore creates them in); the first process first.
std::vector<pid_t> creation_order(pid_t first, const std::map<pid_t, pid_t>& parent_of) {
  std::vector<pid_t> order;
  std::set<pid_t> placed;
  auto add_with_children = [&](auto&& self, pid_t p) -> void {
    if (!placed.insert(p).second) {
      return;
    }
    order.push_back(p);
    for (const auto& [c, pp] : parent_of) {
      if (pp == p) {
        self(self, c);
      }
    }
  };
  if (first > 0 && parent_of.count(first) != 0) {
    add_with_children(add_with_children, first);
  }
  for (const auto& [p, pp] : parent_of) {
    if (parent_of.count(pp) == 0) {  // its parent is init (or outside): a root of its own
      add_with_children(add_with_children, p);
    }
  }
  return order;
}

struct Member {
  pid_t pid = 0;
  std::unique_ptr<CaptureContext> ctx;  // null for a zombie
  image::ProcessImage zombie;
  uint64_t syscall_insn = 0;
};

// Sessions the restore can rebuild: a process is in its parent's session unless it leads its
// own (groups and sessions whose leader ended: leader_helpers).
void check_groups(const std::map<pid_t, pid_t>& parent_of,
                  const std::map<pid_t, std::pair<pid_t, pid_t>>& group_session,
                  Obstacles& obstacles) {
  for (const auto& [pid, gs] : group_session) {
    auto [pgid, sid] = gs;
    auto pp = parent_of.find(pid);
    if (sid != pid && pp != parent_of.end() && group_session.count(pp->second) != 0 &&
        group_session.at(pp->second).second != sid) {
      obstacles.add(user_error(
          "process {} is in session {} but its parent {} is in session {} (not supported yet)", pid,
          sid, pp->second, group_session.at(pp->second).second));
    }
  }
}

// Groups and sessions whose leader has ended live on in their members; the restore needs a
// process of that pid to make them. Each gets a helper: a process image that is only a pid, a
// group and a session, restored as a child of init that makes the session (setsid) or group
// (setpgid), creates the members that are init's children in it (CLONE_PARENT: init stays their
// parent), outlives their joining its group, then ends and is reaped by init, as the leader was.
// A helper can only create init's children: a session whose leader has ended must have no other
// way in (each of its members' parents is in it, or is init), and a group's helper must be
// creatable in its session (by the session's leader, itself a child of init, or by the first
// process, or in vos's own session).
std::vector<image::ProcessImage> leader_helpers(
    pid_t top, const std::map<pid_t, pid_t>& parent_of,
    const std::map<pid_t, std::pair<pid_t, pid_t>>& group_session, Obstacles& obstacles) {
  // 0: a group or session outside the namespace (vos run's caller's); 1: vos's own (init's,
  // a detached program's). Both are whatever the restore gives the program.
  auto vos_given = [](pid_t id) { return id == 0 || id == 1; };
  std::map<pid_t, image::ProcessImage> helpers;
  auto helper = [&](pid_t pid, pid_t pgid, pid_t sid) {
    image::ProcessImage h;
    h.pid = pid;
    h.ppid = 1;
    h.pgid = pgid;
    h.sid = sid;
    h.zombie = true;
    h.helper = true;
    h.argv = {"[vos: leader helper]"};
    helpers.emplace(pid, std::move(h));
  };
  for (const auto& [pid, gs] : group_session) {
    pid_t sid = gs.second;
    if (vos_given(sid) || group_session.count(sid) != 0) {
      continue;
    }
    auto pp = parent_of.find(pid);
    bool parent_in_session = pp != parent_of.end() && group_session.count(pp->second) != 0 &&
                             group_session.at(pp->second).second == sid;
    // (A parent of the tree in another session is refused by check_groups.)
    if (!parent_in_session &&
        (pp == parent_of.end() || (pp->second != 1 && group_session.count(pp->second) == 0))) {
      obstacles.add(user_error(
          "process {} is in session {}, whose leader has ended, but its parent {} is not init "
          "nor in that session (not supported yet)",
          pid, sid, pp == parent_of.end() ? 0 : pp->second));
    }
    helper(sid, sid, sid);
  }
  for (const auto& [pid, gs] : group_session) {
    auto [pgid, sid] = gs;
    if (vos_given(pgid) || group_session.count(pgid) != 0 || helpers.count(pgid) != 0) {
      continue;
    }
    // Who makes it: in vos's own session the first process (before it leaves it); else the
    // session's leader, if that is the first process or a child of init (or a helper).
    bool creatable = vos_given(sid) || sid == top || helpers.count(sid) != 0;
    if (!creatable) {
      auto leader = parent_of.find(sid);
      creatable = leader != parent_of.end() && leader->second == 1;
    }
    if (!creatable) {
      obstacles.add(user_error(
          "process {} is in process group {}, whose leader has ended, in session {}, whose "
          "leader is not a child of init (not supported yet)",
          pid, pgid, sid));
    }
    helper(pgid, pgid, sid);
  }
  std::vector<image::ProcessImage> out;
  for (auto& [pid, h] : helpers) {
    out.push_back(std::move(h));
  }
  return out;
}

// Gives every object the tree's processes share one number (FdState::tree_desc): open file
// descriptions held by several processes (kcmp), and every pipe end (a pipe's two ends are made
// together, and the process holding the read end may not be the one that makes it). A pipe's
// unread bytes go with each of its ends.
Status share_descriptions(std::vector<Member>& members, Obstacles& obstacles) {
  struct Held {
    pid_t pid;
    image::FdState* fd;
  };
  std::vector<Held> owners;  // one per description, in order
  uint32_t next = 1;
  for (auto& m : members) {
    if (!m.ctx) {
      continue;
    }
    auto& fds = m.ctx->img.fds;
    for (auto& f : fds) {
      if (f.dup_of >= 0) {
        continue;
      }
      for (const auto& o : owners) {
        if (o.fd->kind == f.kind && o.fd->ino == f.ino && o.fd->path == f.path &&
            ::syscall(SYS_kcmp, o.pid, m.pid, kKcmpFile, o.fd->fd, f.fd) == 0) {
          f.tree_desc = o.fd->tree_desc;
          break;
        }
      }
      if (f.tree_desc == 0) {
        owners.push_back({m.pid, &f});
        f.tree_desc = next++;  // provisional: kept only if shared or a pipe end
      }
    }
  }
  std::map<uint32_t, int> holders;
  for (auto& m : members) {
    if (!m.ctx) {
      continue;
    }
    std::set<uint32_t> seen;
    for (const auto& f : m.ctx->img.fds) {
      if (f.dup_of < 0 && seen.insert(f.tree_desc).second) {
        ++holders[f.tree_desc];
      }
    }
  }
  std::map<uint64_t, const image::FdState*> pipe_data;  // by pipe inode: its read end
  for (const auto& o : owners) {
    if (o.fd->kind == image::FdKind::kPipe && !o.fd->pipe_write_end) {
      pipe_data.emplace(o.fd->ino, o.fd);
    }
  }
  for (auto& m : members) {
    if (!m.ctx) {
      continue;
    }
    for (auto& f : m.ctx->img.fds) {
      // Both ends of a pipe or a socketpair are made together, by whichever process comes first;
      // so is every open of a FIFO (they share its buffer, which must not be empty meanwhile).
      bool pipe = f.kind == image::FdKind::kPipe || f.kind == image::FdKind::kUnixPair ||
                  f.kind == image::FdKind::kFifo;
      if (!pipe && holders[f.tree_desc] < 2) {
        f.tree_desc = 0;
        continue;
      }
      if (f.kind == image::FdKind::kEpoll) {
        obstacles.add(
            user_error("process {}: fd {}: an epoll instance shared with another "
                       "process (not supported yet)",
                       m.pid, f.fd));
      }
      if (f.kind == image::FdKind::kPipe) {
        if (auto it = pipe_data.find(f.ino); it != pipe_data.end()) {
          f.data = it->second->data;
          f.size = it->second->size;
        }
      }
    }
  }
  return {};
}

// Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, inherited across fork) is one object per
// shmem inode: each gets a number (MemoryArea::shared_object), and its pages are stored once,
// with the first mapping of it; a later mapping stores them only if it covers part of the
// object no earlier one did. (A memfd or deleted file shared by processes: check_shared_files.)
void share_memory(std::vector<Member>& members) {
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> ids;
  std::map<uint32_t, std::vector<std::pair<uint64_t, uint64_t>>> stored;  // ranges in the object
  for (auto& m : members) {
    if (!m.ctx) {
      continue;
    }
    auto& areas = m.ctx->img.areas;
    for (size_t i = 0; i < areas.size(); ++i) {
      auto& a = areas[i];
      auto key = std::make_pair(a.dev, a.ino);
      if (a.kind == image::AreaKind::kSharedAnon) {
        auto [it, fresh] = ids.emplace(key, static_cast<uint32_t>(ids.size() + 1));
        a.shared_object = it->second;
        uint64_t from = a.file_offset, to = a.file_offset + (a.end - a.start);
        auto& done = stored[a.shared_object];
        bool covered = std::any_of(done.begin(), done.end(), [&](const auto& r) {
          return r.first <= from && to <= r.second;
        });
        if (covered && i < m.ctx->area_plans.size()) {
          m.ctx->area_plans[i].stores_pages = false;
        } else {
          done.emplace_back(from, to);
        }
        continue;
      }
    }
  }
}

// A memfd or a deleted file several processes hold comes back as one object only through one
// open file description (one FdState::tree_desc, made once by the first process; their
// mappings go through their descriptors). Reached through different descriptions, or mapped by
// a process without a descriptor of it (such a mapping is kept as shared anonymous memory of
// its own), it would come back as several copies: refused, naming both processes.
void check_shared_files(const std::vector<Member>& members, Obstacles& obstacles) {
  struct Use {
    std::string name;
    std::set<uint32_t> descriptions;  // tree_desc of each fd of it (0: a description of its own)
    bool mapped_without_fd = false;
  };
  // By kind (memfd or deleted file), device (as /proc/PID/maps numbers it) and inode.
  using Key = std::tuple<bool, uint64_t, uint64_t>;
  std::map<Key, std::map<pid_t, Use>> uses;
  auto maps_dev = [](uint64_t st_dev) {
    return (static_cast<uint64_t>(major(st_dev)) << 8) | minor(st_dev);
  };
  for (const auto& m : members) {
    if (!m.ctx) {
      continue;
    }
    for (const auto& f : m.ctx->img.fds) {
      bool memfd = f.kind == image::FdKind::kMemfd;
      if (f.dup_of >= 0 || !(memfd || (f.kind == image::FdKind::kFile && f.deleted))) {
        continue;
      }
      auto& use = uses[{memfd, memfd ? 0 : maps_dev(f.dev), f.ino}][m.pid];
      use.name = f.path;
      use.descriptions.insert(f.tree_desc);
    }
    for (const auto& a : m.ctx->img.areas) {
      // A shared mapping of a memfd or deleted file that no descriptor of this process holds
      // (plan_memory made it shared anonymous memory).
      bool memfd = names_memfd(a.name);
      bool deleted = names_deleted_file(a.name);
      if (a.kind != image::AreaKind::kSharedAnon || !(memfd || deleted)) {
        continue;
      }
      auto& use = uses[{memfd, memfd ? 0 : a.dev, a.ino}][m.pid];
      use.name = a.name;
      use.mapped_without_fd = true;
    }
  }
  for (const auto& [key, by_pid] : uses) {
    if (by_pid.size() < 2) {
      continue;
    }
    std::set<uint32_t> all;
    bool with_fd = false, without_fd = false;
    for (const auto& [pid, use] : by_pid) {
      all.insert(use.descriptions.begin(), use.descriptions.end());
      with_fd |= !use.descriptions.empty();
      without_fd |= use.descriptions.empty();
    }
    if (!with_fd) {
      continue;  // shared anonymous memory in all of them: one object (share_memory)
    }
    if (without_fd || all.size() != 1 || *all.begin() == 0) {
      auto a = by_pid.begin();
      auto b = std::next(a);
      obstacles.add(user_error(
          "processes {} and {} share {} {} through {}: not supported yet (only through one "
          "descriptor they both inherited)",
          a->first, b->first, std::get<0>(key) ? "memfd" : "deleted file", a->second.name,
          without_fd ? "a mapping without a descriptor" : "different open descriptions"));
    }
  }
}

// The images a tree's image builds on, one list for all its processes (the top process's, which
// a restore opens): each process numbered its parents in the order it met them.
void share_parents(image::ProcessImage& root) {
  auto index_of = [&](const image::ParentImage& p) {
    for (size_t i = 0; i < root.parents.size(); ++i) {
      if (root.parents[i].image_id == p.image_id) {
        return static_cast<uint32_t>(i + 1);
      }
    }
    root.parents.push_back(p);
    return static_cast<uint32_t>(root.parents.size());
  };
  for (auto& q : root.processes) {
    std::vector<uint32_t> renumbered;
    for (const auto& p : q.parents) {
      renumbered.push_back(index_of(p));
    }
    for (auto& a : q.areas) {
      for (auto& r : a.pages) {
        if (r.image > 0 && r.image <= renumbered.size()) {
          r.image = renumbered[r.image - 1];
        }
      }
    }
  }
  for (auto& q : root.processes) {
    q.parents = root.parents;
  }
}

// Ends the snapshots; each process but the first collects its own (see snapshot.h). The image
// is complete by then: a snapshot left uncollected is said (the returned note), not a failure.
std::string reap_snapshots(std::map<pid_t, Snapshot>& snapshots, const std::vector<Member>& members,
                           pid_t top) {
  std::vector<std::pair<const Member*, pid_t>> own;  // (process, its snapshot)
  for (const auto& m : members) {
    if (auto snap = snapshots.find(m.pid); snap != snapshots.end() && m.pid != top) {
      own.emplace_back(&m, snap->second.pid());
    }
  }
  snapshots.clear();  // killed, and waited for as their tracer
  std::string left;
  for (auto [m, child] : own) {
    if (auto r = reap_in(m->pid, child, m->syscall_insn); !r) {
      left +=
          fmt::format("{}{} left for {} to collect: {}", left.empty() ? "" : "; ",
                      fmt::format("a snapshot (pid {})", child), m->ctx->who, r.error().describe());
    }
  }
  return left;
}

}  // namespace

Result<CheckpointStats> checkpoint_tree(pid_t first, const std::set<pid_t>& not_program,
                                        const CheckpointOptions& opts,
                                        std::map<pid_t, CheckpointBase>& bases) {
  auto start = Clock::now();
  CheckpointStats stats;
  auto who_of = [&](pid_t pid) {
    if (pid == first) {
      return opts.who;
    }
    pid_t host = opts.host_pid_of ? opts.host_pid_of(pid) : 0;
    return host > 0 ? fmt::format("process {} ({} inside) of {}", host, pid, opts.who)
                    : fmt::format("process {} (inside) of {}", pid, opts.who);
  };
  // Before anything is frozen, every process: what would stop the checkpoint, named at once.
  auto listed = namespace_processes(not_program);
  if (!listed) {
    return std::move(listed).error();
  }
  std::vector<pid_t> before(listed->begin(), listed->end());
  // What the processes' last images were (--incremental): only for the same processes, and
  // while those images are there as they were written.
  const bool keep_tracking =
      opts.incremental ||
      std::any_of(bases.begin(), bases.end(), [](const auto& b) { return b.second.keep_tracking; });
  for (auto it = bases.begin(); it != bases.end();) {
    auto st = read_tree_stat(it->first);
    bool same = st && st->state != 'Z' && st->start_time == it->second.process_start &&
                it->second.check_images();
    it = same ? std::next(it) : bases.erase(it);
  }
  if (!opts.parent.empty()) {
    for (const auto& [pid, base] : bases) {
      if (!base.has_image() || base.images[0].path != opts.parent) {
        return user_error("{}: {} is not the program's last checkpoint{}", opts.who, opts.parent,
                          base.has_image() ? " (that is " + base.images[0].path + ")" : "");
      }
    }
    if (bases.empty()) {
      return user_error("{}: {} is not the program's last checkpoint (it has none to build on)",
                        opts.who, opts.parent);
    }
  }
  if (!opts.incremental) {
    for (auto& [pid, base] : bases) {
      base.forget();  // a full image, but writes stay tracked for the next incremental one
    }
  }
  // A process whose last image is there: its image stores what it wrote since (found at the
  // freeze, as for a single process: no pre-copy), the rest inherited.
  auto delta_of = [&](pid_t pid) {
    auto b = bases.find(pid);
    return opts.incremental && b != bases.end() && b->second.has_image() && b->second.tracker;
  };
  for (const auto& [pid, base] : bases) {
    if (delta_of(pid)) {
      stats.parent = base.images[0].path;
    }
  }
  if (opts.incremental && stats.parent.empty()) {
    stats.note =
        "first incremental checkpoint of this program: a full image, writes tracked from now";
  }
  {
    auto elsewhere = ends_elsewhere(before);
    Obstacles obstacles;
    for (pid_t pid : before) {
      auto st = read_tree_stat(pid);
      if (!st || st->state == 'Z') {
        continue;
      }
      Obstacles own;
      precheck_process(pid, own);
      precheck_memory(pid, opts.own_ipc_namespace, own);
      precheck_fds(pid, pid == first ? opts.log : "", opts.console_rdev, own, opts.files,
                   elsewhere[pid]);
      if (::access(fmt::format("/proc/{}", pid).c_str(), F_OK) != 0) {
        continue;  // ended meanwhile (a short-lived child): nothing of it to refuse
      }
      for (const auto& item : own.items()) {
        obstacles.add(user_error("{}: {}", who_of(pid), item));
      }
    }
    VOS_TRY(obstacles.result(opts.who), "checkpoint");
  }
  stats.phases.emplace_back("precheck", ms_since(start));
  auto writer = image::ImageWriter::create(opts.image_path, opts.writer_pid);
  if (!writer) {
    return std::move(writer).error();
  }
  writer->set_page_codec(opts.codec);
  if (opts.progress != nullptr) {
    writer->count_page_bytes_in(&opts.progress->page_bytes);
    writer->cancel_when(&opts.progress->cancelled);
    uint64_t expected = 0;
    for (pid_t pid : before) {
      if (auto n = private_resident_bytes(pid); n) {
        expected += *n;
      }
    }
    opts.progress->expected_bytes = expected;
  }
  // Live: each process's memory is copied while the tree runs (its writes tracked from a short
  // stop of its own), so that the freeze copies only what was written since (see checkpoint()).
  // A process forked after its turn, or whose memory cannot be tracked, is stored whole then.
  const std::string image_id = image::new_image_id();
  const bool precopy = opts.precopy && !opts.kill;
  std::set<pid_t> precopied;  // this time, while the tree ran
  uint64_t precopied_pages = 0;
  struct ForegroundAtEnd {
    ~ForegroundAtEnd() { cpu_class::all_threads_to_foreground(); }
  } foreground_at_end;
  std::optional<cpu_class::StarvationGuard> starvation_guard;
  if (precopy) {
    VOS_TRY(writer->begin_section(abi::SectionType::kPages), "pages");
    auto precopy_start = Clock::now();
    starvation_guard.emplace();
    for (pid_t pid : before) {
      auto st = read_tree_stat(pid);
      if (!st || st->state == 'Z') {
        continue;
      }
      CaptureContext pre;
      pre.pid = pid;
      pre.who = who_of(pid);
      UniqueFd mem(::open(fmt::format("/proc/{}/mem", pid).c_str(), O_RDONLY | O_CLOEXEC));
      if (!mem.valid()) {
        continue;  // ended meanwhile
      }
      pre.mem_fd = mem.get();
      if (delta_of(pid)) {
        continue;  // only what it wrote since its last image, copied at the freeze
      }
      auto found = bases.find(pid);
      if (found == bases.end() || !found->second.tracker) {
        auto tracker = start_tracking(pre, stats);
        if (!tracker) {
          continue;  // stored whole at the freeze
        }
        bases[pid].tracker.emplace(std::move(*tracker));
      }
      cpu_class::all_threads_to_background();
      auto& base = bases[pid];
      base.process_start = st->start_time;
      base.follow_moves(true);
      uint64_t stored = 0;
      if (auto copied =
              precopy_pages(pid, base, *writer, image_id, opts.image_path, false, &stored, nullptr);
          !copied) {
        bases.erase(pid);
        if (::access(fmt::format("/proc/{}", pid).c_str(), F_OK) == 0) {
          return std::move(copied).error().context(fmt::format("pre-copy of {}", pre.who));
        }
        continue;
      }
      precopied_pages += stored;
      precopied.insert(pid);
      cpu_class::all_threads_to_foreground();
    }
    stats.phases.emplace_back("precopy", ms_since(precopy_start));
  }
  // Read while the tree runs (smaps is slow; so is finding a syscall instruction): kept for
  // the processes that still look the same at the freeze.
  std::map<pid_t, std::map<uint64_t, std::string>> vm_flags_before;
  std::map<pid_t, uint64_t> insn_before;
  for (pid_t pid : before) {
    if (auto flags = read_vm_flags(pid); flags) {
      vm_flags_before[pid] = std::move(*flags);
    }
    CaptureContext probe;
    probe.pid = pid;
    UniqueFd mem(::open(fmt::format("/proc/{}/mem", pid).c_str(), O_RDONLY | O_CLOEXEC));
    probe.mem_fd = mem.get();
    if (auto insn = mem.valid() ? find_syscall_insn(probe) : Result<uint64_t>(user_error("gone"));
        insn) {
      insn_before[pid] = *insn;
    }
  }
  (void)fds::read_proc_locks();  // primed: see checkpoint()
  auto frozen_at = Clock::now();
  auto tree = freeze_tree(not_program);
  if (!tree) {
    return std::move(tree).error().context(fmt::format("freezing {}", opts.who));
  }
  stats.phases.emplace_back("freeze", ms_since(frozen_at));
  auto proc_locks = fds::read_proc_locks();
  if (!proc_locks) {
    return std::move(proc_locks).error();
  }
  std::map<pid_t, pid_t> parent_of;
  std::map<pid_t, std::pair<pid_t, pid_t>> group_session;
  for (auto& [pid, session] : tree->live) {
    auto st = read_tree_stat(pid);
    if (!st) {
      return std::move(st).error();
    }
    parent_of[pid] = st->ppid;
    group_session[pid] = {st->pgid, st->sid};
  }
  Obstacles obstacles;
  for (const auto& [pid, st] : tree->zombies) {
    if (st.ppid == 1) {
      continue;  // init reaps it any moment: as good as gone
    }
    if (auto tasks = list_tasks(pid); tasks && tasks->size() > 1) {
      obstacles.add(
          user_error("{}: its main thread has ended while its other threads run (not "
                     "supported yet)",
                     who_of(pid)));
    }
    parent_of[pid] = st.ppid;
    group_session[pid] = {st.pgid, st.sid};
  }
  pid_t top = first > 0 && tree->live.count(first) != 0 ? first : 0;
  if (top == 0) {
    for (const auto& [pid, pp] : parent_of) {
      if (pp == 1 && tree->live.count(pid) != 0) {
        top = pid;
        break;
      }
    }
  }
  if (top == 0) {
    return user_error("{}: no process of the program is left to checkpoint", opts.who);
  }
  auto order = creation_order(top, parent_of);
  auto elsewhere = ends_elsewhere(order);

  std::vector<Member> members;
  std::string blobs;  // one blobs section for all: each context appends to what the last left
  auto capture_start = Clock::now();
  for (pid_t pid : order) {
    Member m;
    m.pid = pid;
    if (auto z = tree->zombies.find(pid); z != tree->zombies.end()) {
      m.zombie.pid = pid;
      m.zombie.ppid = z->second.ppid;
      m.zombie.pgid = z->second.pgid;
      m.zombie.sid = z->second.sid;
      m.zombie.zombie = true;
      m.zombie.exit_status = z->second.exit_code;
      m.zombie.argv = {"[" + z->second.comm + "]"};
      members.push_back(std::move(m));
      continue;
    }
    m.ctx = std::make_unique<CaptureContext>();
    auto& ctx = *m.ctx;
    ctx.pid = pid;
    ctx.who = who_of(pid);
    ctx.log = pid == first ? opts.log : "";
    ctx.console_rdev = opts.console_rdev;
    if (pid == top) {
      ctx.console_state = opts.console_state;
    }
    ctx.img.pid = pid;
    ctx.img.ppid = parent_of[pid];
    ctx.img.image_id = image_id;
    ctx.own_ipc_namespace = opts.own_ipc_namespace;
    ctx.files = opts.files;
    ctx.elsewhere = elsewhere[pid];
    ctx.proc_locks = *proc_locks;
    ctx.session = &tree->live.at(pid);
    UniqueFd mem(::open(fmt::format("/proc/{}/mem", pid).c_str(), O_RDONLY | O_CLOEXEC));
    if (!mem.valid()) {
      return sys_error("opening /proc/{}/mem", pid);
    }
    ctx.mem_fd = mem.release();
    // (Flags read before the freeze; a mapping made since is read while frozen, as in
    // checkpoint(). A process exec'd since has other mappings: they are read again.)
    if (auto f = vm_flags_before.find(pid); f != vm_flags_before.end()) {
      ctx.vm_flags = std::move(f->second);
    } else {
      auto flags = read_vm_flags(pid);
      if (!flags) {
        return std::move(flags).error();
      }
      ctx.vm_flags = std::move(*flags);
    }
    auto known = insn_before.find(pid);
    auto insn = known != insn_before.end() && is_syscall_insn(ctx, known->second)
                    ? Result<uint64_t>(known->second)
                    : find_syscall_insn(ctx);
    if (!insn) {
      return std::move(insn).error();
    }
    ctx.session->set_syscall_insn(*insn);
    m.syscall_insn = *insn;
    members.push_back(std::move(m));
  }
  // What only each process can tell, asked of all at once: their injected calls overlap.
  {
    std::vector<CaptureContext*> all;
    for (auto& m : members) {
      if (m.ctx) {
        all.push_back(m.ctx.get());
      }
    }
    ask_together(all);
  }
  for (auto& m : members) {
    if (!m.ctx) {
      continue;
    }
    auto& ctx = *m.ctx;
    pid_t pid = m.pid;
    ctx.blobs = std::move(blobs);
    VOS_TRY(capture_process_state(ctx), "checkpoint of {}", ctx.who);
    VOS_TRY(capture_threads(ctx), "checkpoint of {}", ctx.who);
    VOS_TRY(capture_posix_timers(ctx), "checkpoint of {}", ctx.who);
    VOS_TRY(capture_fds(ctx), "checkpoint of {}", ctx.who);
    VOS_TRY(plan_memory(ctx), "checkpoint of {}", ctx.who);
    // A restore of this image tracks the process's writes from before it runs again, so that
    // the next incremental checkpoint builds on the image.
    ctx.img.writes_tracked = keep_tracking;
    if (pid == top) {
      // The segments belong to the namespace: listed once, with the top process.
      VOS_TRY(capture_sysv_shm(ctx), "checkpoint of {}", ctx.who);
    }
    if (auto b = bases.find(pid); b != bases.end()) {
      // Only what was written since its pre-copy (or its last image) is stored now; the rest is
      // that copy. A base of neither only keeps its tracking: the image holds all.
      bool delta = precopied.count(pid) != 0 || delta_of(pid);
      b->second.follow_moves(precopied.count(pid) == 0);
      VOS_TRY(sync_tracking(ctx, b->second, delta), "checkpoint of {}", ctx.who);
    }
    blobs = std::move(ctx.blobs);
  }
  struct CloseMem {
    std::vector<Member>& m;
    ~CloseMem() {
      for (auto& x : m) {
        if (x.ctx && x.ctx->mem_fd >= 0) {
          ::close(x.ctx->mem_fd);
        }
      }
    }
  } close_mem{members};
  check_groups(parent_of, group_session, obstacles);
  auto helpers = leader_helpers(top, parent_of, group_session, obstacles);
  share_memory(members);
  VOS_TRY(share_descriptions(members, obstacles), "checkpoint of {}", opts.who);
  check_shared_files(members, obstacles);
  VOS_TRY(obstacles.result(opts.who), "checkpoint");
  stats.phases.emplace_back("capture", ms_since(capture_start));

  auto pages_start = Clock::now();
  if (!precopy) {
    VOS_TRY(writer->begin_section(abi::SectionType::kPages), "pages");
  }
  WriterSink to_image(*writer);
  // Live, a process not pre-copied (--no-precopy, memory that could not be tracked, forked
  // since) and with more than the writes since its last image to store: a copy-on-write
  // snapshot, read once the tree runs again, as for a single process. With pre-copy, not for a
  // small one (forked since): copying while stopped (~0.3 ms per MiB here) is cheaper than a
  // snapshot (~2.5 ms) and the stop that collects it afterwards.
  constexpr uint64_t kSnapshotFrom = 8ull << 20;
  auto wants_snapshot = [&](const Member& m) {
    if (!m.ctx || precopied.count(m.pid) != 0 || delta_of(m.pid)) {
      return false;
    }
    auto private_bytes = private_resident_bytes(m.pid);
    return !precopy || (private_bytes && *private_bytes >= kSnapshotFrom);
  };
  std::map<pid_t, Snapshot> snapshots;
  if (!opts.kill) {
    for (auto& m : members) {
      if (wants_snapshot(m)) {
        auto snap = Snapshot::take(*m.ctx->session, m.syscall_insn, m.pid != top);
        if (!snap) {
          return std::move(snap).error().context(fmt::format("checkpoint of {}", m.ctx->who));
        }
        snapshots.emplace(m.pid, std::move(*snap));
      }
    }
    if (!snapshots.empty()) {
      stats.phases.emplace_back("snapshot", ms_since(pages_start));
    }
  }
  for (auto& m : members) {
    if (m.ctx) {
      PagePass pass = snapshots.count(m.pid) != 0 ? PagePass::kFrozenOnly : PagePass::kAll;
      VOS_TRY(write_pages(*m.ctx, to_image, m.pid, pass), "memory of {}", m.ctx->who);
    }
  }
  if (!opts.kill) {
    // Everything of the program is read (or in its snapshots): it runs again while the image is
    // finished (the files it writes are hashed from here on, as for a single process).
    Status resumed;
    for (auto& [pid, session] : tree->live) {
      if (auto r = session.resume(); !r && resumed) {
        resumed = std::move(r);
      }
    }
    stats.add_stop(ms_since(frozen_at));
    VOS_TRY(std::move(resumed), "resuming after checkpoint");
  }
  if (!snapshots.empty()) {
    auto snapshot_pages_start = Clock::now();
    for (auto& m : members) {
      if (auto snap = snapshots.find(m.pid); snap != snapshots.end()) {
        VOS_TRY(write_pages(*m.ctx, to_image, snap->second.pid(), PagePass::kSnapshotOnly),
                "memory of {} (snapshot)", m.ctx->who);
        VOS_TRY(check_snapshot(*m.ctx, snap->second.pid()), "checkpoint of {}", m.ctx->who);
      }
    }
    stats.phases.emplace_back("snapshot_pages", ms_since(snapshot_pages_start));
    if (std::string left = reap_snapshots(snapshots, members, top); !left.empty()) {
      stats.note += (stats.note.empty() ? "" : "; ") + left;
    }
  }
  VOS_TRY(writer->end_section(), "pages");
  stats.phases.emplace_back("pages", ms_since(pages_start));
  std::string note;
  std::vector<std::string_view> contents;
  uint64_t at = blobs.size();
  image::ProcessImage root;
  for (auto& m : members) {
    image::ProcessImage img;
    if (m.ctx) {
      if (std::string n = finish_fds(*m.ctx); !n.empty()) {
        note += (note.empty() ? "" : "; ") + n;
      }
      auto parts = place_file_contents(*m.ctx, at);
      for (auto p : parts) {
        at += p.size();
      }
      contents.insert(contents.end(), parts.begin(), parts.end());
      img = std::move(m.ctx->img);
      for (const auto& a : img.areas) {
        for (const auto& r : a.pages) {
          stats.pages += r.npages;
        }
      }
      stats.threads += img.threads.size();
      for (const auto& t : img.threads) {
        stats.tids.push_back(t.tid);
      }
      stats.file_locks = stats.file_locks || image::has_file_locks(img);
    } else {
      img = std::move(m.zombie);
    }
    if (m.pid == top) {
      root = std::move(img);
    } else {
      root.processes.push_back(std::move(img));
    }
  }
  for (auto& h : helpers) {
    root.processes.push_back(std::move(h));
  }
  for (const auto& s : root.sysv_shm) {
    for (const auto& r : s.pages) {
      stats.pages += r.npages;
    }
  }
  share_parents(root);
  root.name = opts.name;
  root.ns_last_pid = opts.ns_last_pid;
  root.tty_foreground = opts.tty_foreground;
  root.image_id = image_id;
  root.pages_stored = stats.pages;
  stats.pages_copied = stats.pages + precopied_pages;
  stats.pages_inherited = root.pages_inherited;
  for (const auto& p : root.processes) {
    stats.pages_inherited += p.pages_inherited;
  }
  VOS_TRY(image::finish_image(*writer, blobs, root, contents), "writing image {}", opts.image_path);
  if (opts.kill) {
    for (auto& [pid, session] : tree->live) {
      session.abandon();
    }
    if (opts.before_kill) {
      opts.before_kill(opts.image_path);
    }
    for (auto& [pid, session] : tree->live) {
      ::kill(pid, SIGKILL);
    }
    stats.add_stop(ms_since(frozen_at));
  }
  if (keep_tracking && !opts.kill) {
    struct stat st {};
    if (::stat(opts.image_path.c_str(), &st) == 0) {
      auto record = [&](const image::ProcessImage& p) {
        if (auto b = bases.find(p.pid); b != bases.end() && b->second.tracker) {
          record_base(b->second, p, opts.image_path, static_cast<uint64_t>(st.st_size));
          b->second.keep_tracking = true;
          if (auto now = read_tree_stat(p.pid); now) {
            b->second.process_start = now->start_time;
          }
        }
      };
      record(root);
      for (const auto& p : root.processes) {
        record(p);
      }
      std::erase_if(bases, [](const auto& b) { return !b.second.has_image(); });
    } else {
      bases.clear();
    }
  } else {
    bases.clear();  // writes no longer tracked: the program is left as it was
  }
  if (starvation_guard) {
    stats.background_cpu = starvation_guard->summary();
  }
  stats.note += (stats.note.empty() || note.empty() ? "" : "; ") + note;
  stats.image = opts.image_path;
  stats.bytes = writer->bytes_written();
  stats.codec = opts.codec;
  stats.pages_logical_bytes = writer->pages_logical_bytes();
  stats.pages_stored_bytes = writer->pages_stored_bytes();
  stats.processes = members.size();
  stats.total_ms = ms_since(start);
  return stats;
}

}  // namespace vos::capture
