// Host side. JSON mapping of the process model; field names are the documented image format.
#include "image/process_model.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace vos::image {

NLOHMANN_JSON_SERIALIZE_ENUM(AreaKind, {{AreaKind::kAnon, "anon"},
                                        {AreaKind::kFile, "file"},
                                        {AreaKind::kSharedAnon, "shared-anon"},
                                        {AreaKind::kMemfd, "memfd"},
                                        {AreaKind::kVdso, "vdso"},
                                        {AreaKind::kVvar, "vvar"},
                                        {AreaKind::kVvarVclock, "vvar_vclock"},
                                        {AreaKind::kVsyscall, "vsyscall"},
                                        {AreaKind::kSysvShm, "sysv-shm"},
                                        {AreaKind::kDeletedFile, "deleted-file"}})

NLOHMANN_JSON_SERIALIZE_ENUM(FdKind, {{FdKind::kFile, "file"},
                                      {FdKind::kDir, "dir"},
                                      {FdKind::kStdio, "stdio"},
                                      {FdKind::kDevNull, "devnull"},
                                      {FdKind::kPipe, "pipe"},
                                      {FdKind::kEventfd, "eventfd"},
                                      {FdKind::kEpoll, "epoll"},
                                      {FdKind::kTimerfd, "timerfd"},
                                      {FdKind::kSignalfd, "signalfd"},
                                      {FdKind::kMemfd, "memfd"},
                                      {FdKind::kTcpListen, "tcp-listen"},
                                      {FdKind::kUnixListen, "unix-listen"},
                                      {FdKind::kCharDevice, "char-device"},
                                      {FdKind::kUnixOrphan, "unix-orphan"},
                                      {FdKind::kUnixPair, "unix-pair"},
                                      {FdKind::kConsole, "console"},
                                      {FdKind::kFifo, "fifo"}})

NLOHMANN_JSON_SERIALIZE_ENUM(LockKind, {{LockKind::kPosix, "posix"},
                                        {LockKind::kOfd, "ofd"},
                                        {LockKind::kFlock, "flock"}})

NLOHMANN_JSON_SERIALIZE_ENUM(LockType, {{LockType::kRead, "read"}, {LockType::kWrite, "write"}})

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BlobRef, offset, size)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PageRun, vaddr, npages, offset, image)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ParentImage, path, image_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FileLock, kind, type, start, len)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MemoryArea, start, end, prot, shared, growsdown,
                                                advice, kind, name, file_offset, dev, ino, memfd,
                                                shm_id, shm_rdonly, locks, pages, shared_object)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SysvShm, id, key, size, mode, removed, locked, uid,
                                                gid, cuid, cgid, cpid, lpid, pages)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(IpcPerm, id, key, mode, uid, gid, cuid, cgid)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SysvSem, perm, values, pids)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SysvMessage, type, data)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SysvMsgQueue, perm, qbytes, messages)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AltStack, sp, flags, size)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ThreadState, tid, regs, xstate, sigmask, altstack,
                                                rseq_addr, rseq_len, rseq_sig, robust_list,
                                                robust_list_len, clear_child_tid, pending, comm)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SignalAction, sig, handler, flags, restorer, mask)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ITimer, which, interval_us, value_us)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PosixTimer, id, clockid, notify, signo, sigval, tid,
                                                interval_ns, value_ns, expires_ns, signal_pending,
                                                overrun)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(EpollTarget, fd, events, data)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FdState, fd, kind, flags, cloexec, path, pos, size,
                                                mtime_ns, ino, dev, mode, deleted, content_hash,
                                                stdio, pipe_write_end, data, count, clockid,
                                                interval_ns, value_ns, sigmask, epoll, sockaddr,
                                                backlog, sock_type, semaphore, peer, messages,
                                                shutdown, dup_of, termios, tty_rows, tty_cols,
                                                locks, tree_desc)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ConsoleState, present, termios, rows, cols,
                                                foreground, session, input, screen)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
    ProcessImage, name, argv, exe, cwd, pid, ns_last_pid, pgid, sid, ppid, zombie, helper, exit_status,
    tty_foreground, stopped, uid, gid, groups, umask, personality, thp_disabled, rlimits,
    start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end,
    env_start, env_end, auxv, monotonic_ns, boottime_ns, realtime_ns, areas, threads, actions,
    shared_pending, itimers, posix_timers, fds, sysv_shm, sysv_sem, sysv_msg, pages_stored,
    image_id, parents, pages_inherited, writes_tracked, processes, console)

nlohmann::json to_json(const ProcessImage& p) {
  nlohmann::json j;
  to_json(j, p);
  return j;
}

namespace {

// nlohmann maps an unknown enum string to the first value; an image must not be misread that way.
Status check_kinds(const nlohmann::json& j) {
  static const std::vector<std::string> areas = {
      "anon", "file",        "shared-anon", "memfd",    "vdso",
      "vvar", "vvar_vclock", "vsyscall",    "sysv-shm", "deleted-file"};
  static const std::vector<std::string> fds = {
      "file",        "dir",         "stdio",     "devnull", "pipe",       "eventfd",
      "epoll",       "timerfd",     "signalfd",  "memfd",   "tcp-listen", "unix-listen",
      "char-device", "unix-orphan", "unix-pair", "console", "fifo"};
  auto check = [](const nlohmann::json& list, const std::vector<std::string>& known,
                  const char* what) -> Status {
    if (!list.is_array()) {
      return {};
    }
    for (const auto& item : list) {
      if (item.contains("kind") &&
          (!item["kind"].is_string() ||
           std::find(known.begin(), known.end(), item["kind"].get<std::string>()) == known.end())) {
        return user_error("corrupt: unknown {} kind {}", what, item["kind"].dump());
      }
    }
    return {};
  };
  VOS_TRY(check(j.value("areas", nlohmann::json()), areas, "mapping"), "metadata");
  VOS_TRY(check(j.value("fds", nlohmann::json()), fds, "fd"), "metadata");
  static const std::vector<std::string> lock_kinds = {"posix", "ofd", "flock"};
  static const std::vector<std::string> lock_types = {"read", "write"};
  // Locks are kept by descriptors, and by mappings (flock through a file mapped then closed).
  nlohmann::json holders = nlohmann::json::array();
  for (const char* list : {"fds", "areas"}) {
    const auto items = j.value(list, nlohmann::json());
    if (items.is_array()) {
      holders.insert(holders.end(), items.begin(), items.end());
    }
  }
  for (const auto& f : holders) {
    if (!f.is_object() || !f.contains("locks")) {
      continue;
    }
    VOS_TRY(check(f["locks"], lock_kinds, "lock"), "metadata");
    if (f["locks"].is_array()) {
      for (const auto& l : f["locks"]) {
        if (l.is_object() && l.contains("type") &&
            (!l["type"].is_string() ||
             std::find(lock_types.begin(), lock_types.end(), l["type"].get<std::string>()) ==
                 lock_types.end())) {
          return user_error("metadata: corrupt: unknown lock type {}", l["type"].dump());
        }
      }
    }
  }
  const auto others = j.value("processes", nlohmann::json());
  if (others.is_array()) {
    for (const auto& o : others) {
      if (o.is_object()) {
        VOS_TRY(check_kinds(o), "process {}", o.value("pid", 0));
      }
    }
  }
  return {};
}

}  // namespace

Result<ProcessImage> process_from_json(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_object()) {
      return user_error("corrupt: metadata is not a JSON object");
    }
    auto kinds = check_kinds(j);
    if (!kinds) {
      return std::move(kinds).error();
    }
    return j.get<ProcessImage>();
  } catch (const nlohmann::json::exception& e) {
    return user_error("corrupt: metadata does not parse: {}", e.what());
  }
}

const char* area_kind_name(AreaKind k) {
  nlohmann::json j = k;
  static thread_local std::string s;
  s = j.get<std::string>();
  return s.c_str();
}

const char* fd_kind_name(FdKind k) {
  nlohmann::json j = k;
  static thread_local std::string s;
  s = j.get<std::string>();
  return s.c_str();
}

std::string describe_lock(const FileLock& l) {
  const char* type = l.type == LockType::kWrite ? "write" : "read";
  if (l.kind == LockKind::kFlock) {
    return l.type == LockType::kWrite ? "flock LOCK_EX" : "flock LOCK_SH";
  }
  const char* kind = l.kind == LockKind::kOfd ? "OFD" : "POSIX";
  if (l.len == 0) {
    return fmt::format("{} {} lock from byte {} to EOF", kind, type, l.start);
  }
  if (l.len == 1) {
    return fmt::format("{} {} lock on byte {}", kind, type, l.start);
  }
  return fmt::format("{} {} lock on bytes {}-{}", kind, type, l.start, l.start + l.len - 1);
}

bool has_file_locks(const ProcessImage& p) {
  return std::any_of(p.fds.begin(), p.fds.end(),
                     [](const FdState& f) { return !f.locks.empty(); }) ||
         std::any_of(p.areas.begin(), p.areas.end(),
                     [](const MemoryArea& a) { return !a.locks.empty(); });
}

std::string new_image_id() {
  unsigned char bytes[16] = {};
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    // No entropy yet (very early boot): time and pid still make a collision unlikely.
    uint64_t t = static_cast<uint64_t>(::time(nullptr)) ^ (static_cast<uint64_t>(::getpid()) << 32);
    std::memcpy(bytes, &t, sizeof t);
  }
  std::string id;
  for (unsigned char b : bytes) {
    id += fmt::format("{:02x}", b);
  }
  return id;
}

}  // namespace vos::image
