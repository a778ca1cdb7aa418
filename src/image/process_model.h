// Host side. The process as an image describes it: what capture fills in, what restore rebuilds.
// Serialised as the image's JSON "meta" section; binary state (registers, pipe contents) lives in
// the "blobs" section and page contents in the "pages" section, referenced by offset.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"

namespace vos::image {

struct BlobRef {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// `npages` pages starting at `vaddr`, stored contiguously at `offset` in the pages section of
// this image (`image` 0) or of its parent `parents[image - 1]` (incremental images).
struct PageRun {
  uint64_t vaddr = 0;
  uint64_t npages = 0;
  uint64_t offset = 0;
  uint32_t image = 0;
};

// An earlier image whose pages an incremental image uses; `image_id` must match its own.
struct ParentImage {
  std::string path;
  std::string image_id;
};

// madvise() state of a mapping that the kernel keeps per mapping (smaps VmFlags) and that a
// restore must set again: it changes how the program behaves (fork, core dumps) or performs.
enum AreaAdvice : uint32_t {
  kAdviceHugePage = 1u << 0,    // hg: MADV_HUGEPAGE
  kAdviceNoHugePage = 1u << 1,  // nh: MADV_NOHUGEPAGE
  kAdviceDontFork = 1u << 2,    // dc: MADV_DONTFORK
  kAdviceDontDump = 1u << 3,    // dd: MADV_DONTDUMP
  kAdviceWipeOnFork = 1u << 4,  // wf: MADV_WIPEONFORK
  kAdviceMergeable = 1u << 5,   // mg: MADV_MERGEABLE (KSM)
};

// A file lock held through a descriptor. POSIX record locks belong to the process (any close of
// the file in it releases them), OFD and flock locks to the open file description.
enum class LockKind { kPosix, kOfd, kFlock };
enum class LockType { kRead, kWrite };

struct FileLock {
  LockKind kind = LockKind::kPosix;
  LockType type = LockType::kRead;
  uint64_t start = 0;  // first byte; 0 for flock (whole file)
  uint64_t len = 0;    // bytes; 0: to the end of the file, however far it grows (as l_len 0)
};

// kDeletedFile: a file whose name is gone, mapped through a descriptor of the program that holds
// it (`memfd`), which the restore recreates first.
enum class AreaKind {
  kAnon,
  kFile,
  kSharedAnon,
  kMemfd,
  kVdso,
  kVvar,
  kVvarVclock,
  kVsyscall,
  kSysvShm,  // (part of) an attachment of a System V shared memory segment (shmat)
  kDeletedFile
};

struct MemoryArea {
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t prot = 0;  // PROT_*
  bool shared = false;
  bool growsdown = false;
  uint32_t advice = 0;  // madvise() hints to set again (AreaAdvice bits), from smaps VmFlags
  AreaKind kind = AreaKind::kAnon;
  std::string name;  // /proc maps name: path, [heap], [stack], ...
  uint64_t file_offset = 0;
  uint64_t dev = 0;
  uint64_t ino = 0;
  int memfd = -1;  // for kMemfd, kDeletedFile: the program fd whose object backs this mapping
  // For kSysvShm: the segment attached (SysvShm::id; file_offset is the offset in it), and
  // whether it was attached SHM_RDONLY (the mapping may never be made writable).
  int32_t shm_id = -1;
  bool shm_rdonly = false;
  // kFile: flock locks held through the open file description this mapping keeps (the program
  // opened the file, locked it, mapped it and closed the descriptor: every JVM does so with its
  // hsperfdata file). On the first mapping of the file only; restore takes them on the descriptor
  // it maps the file through, which the mapping then keeps.
  std::vector<FileLock> locks;
  std::vector<PageRun> pages;
  // Process trees, kSharedAnon: which shared object of the tree (from 1) this maps, at
  // `file_offset` in it. Its pages are stored with the first mapping of it in the tree (others
  // store what that one does not cover); every process maps the one object again.
  uint32_t shared_object = 0;
};

// A System V shared memory segment of the program's IPC namespace. The program keeps the id
// shmget gave it (PostgreSQL writes it into its lock file and checks it), so the segment comes
// back under that id. Segments belong to the namespace, not to a process: mappings (kSysvShm)
// name them by id, so processes of one program can share one.
struct SysvShm {
  int32_t id = 0;
  int32_t key = 0;       // IPC_PRIVATE (0) once removed: the kernel forgets the key then
  uint64_t size = 0;     // shm_segsz, bytes
  uint32_t mode = 0;     // permission bits (0777)
  bool removed = false;  // IPC_RMID: destroyed when its last attachment goes
  bool locked = false;   // SHM_LOCK
  // As the program's user namespace shows them.
  uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0;
  int32_t cpid = 0, lpid = 0;  // informational
  // Its contents: `vaddr` is the offset in the segment. Pages not listed read as zeros.
  std::vector<PageRun> pages;
};

// The owner and permissions every System V IPC object has (struct ipc_perm), as the program's
// user namespace shows them.
struct IpcPerm {
  int32_t id = 0;     // kept: programs store the ids semget/msgget gave them
  int32_t key = 0;    // IPC_PRIVATE (0) or the key the object was made with
  uint32_t mode = 0;  // permission bits (0777)
  uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0;
};

// A System V semaphore set of the program's IPC namespace. Its values are the set's; what each
// process would undo at exit (SEM_UNDO) the kernel does not show (docs/limits.md).
struct SysvSem {
  IpcPerm perm;
  std::vector<uint16_t> values;  // semval of each semaphore, in order (the set's size)
  std::vector<int32_t> pids;     // sempid of each: the last process to change it (informational)
};

// One message of a System V message queue, in queue order.
struct SysvMessage {
  int64_t type = 0;  // mtype, > 0
  std::string data;  // mtext, as hex
};

// A System V message queue of the program's IPC namespace, with the messages it holds.
struct SysvMsgQueue {
  IpcPerm perm;
  uint64_t qbytes = 0;  // msg_qbytes: the most bytes it may hold (IPC_SET may have changed it)
  std::vector<SysvMessage> messages;
};

struct AltStack {
  uint64_t sp = 0;
  int32_t flags = 0;
  uint64_t size = 0;
};

struct ThreadState {
  int32_t tid = 0;
  BlobRef regs;    // struct user_regs_struct, already rewritten to resume an interrupted syscall
  BlobRef xstate;  // XSAVE area (NT_X86_XSTATE)
  uint64_t sigmask = 0;
  AltStack altstack;
  uint64_t rseq_addr = 0;
  uint32_t rseq_len = 0;
  uint32_t rseq_sig = 0;
  uint64_t robust_list = 0;
  uint64_t robust_list_len = 0;
  uint64_t clear_child_tid = 0;
  std::vector<BlobRef> pending;  // siginfo_t of signals queued to this thread only
  std::string comm;
};

struct SignalAction {
  int32_t sig = 0;
  uint64_t handler = 0;
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
};

struct ITimer {
  int32_t which = 0;
  int64_t interval_us = 0;
  int64_t value_us = 0;
};

// A POSIX timer (timer_create) as the kernel holds it; restored with the same id, since the
// program keeps the id and uses it later.
struct PosixTimer {
  int32_t id = 0;
  int32_t clockid = 0;  // as /proc/PID/timers shows it: CPU clocks keep their encoded pid/tid
  int32_t notify = 0;   // the kernel's sigev_notify: SIGEV_SIGNAL/NONE/THREAD, | SIGEV_THREAD_ID
  int32_t signo = 0;
  uint64_t sigval = 0;  // sigev_value, as a u64
  int32_t tid = 0;      // SIGEV_THREAD_ID: the thread the signal goes to
  int64_t interval_ns = 0;
  int64_t value_ns = 0;    // time left at capture; 0: not armed (or expired, see signal_pending)
  int64_t expires_ns = 0;  // its clock's reading at that expiry; 0 for CPU-time clocks
  // Its signal was queued and not yet taken: the restore lets the timer expire again at once
  // instead of queueing the old siginfo, so that the kernel's own bookkeeping (one queued signal
  // per timer, the overrun count, re-arming a periodic timer when its signal is taken) goes on.
  bool signal_pending = false;
  int32_t overrun = 0;  // timer_getoverrun at capture; informational (the kernel cannot set it)
};

struct EpollTarget {
  int32_t fd = 0;
  uint32_t events = 0;
  uint64_t data = 0;
};

enum class FdKind {
  kFile,
  kDir,
  kStdio,
  kDevNull,
  kPipe,
  kEventfd,
  kEpoll,
  kTimerfd,
  kSignalfd,
  kMemfd,
  kTcpListen,
  kUnixListen,
  kCharDevice,  // by path: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty
  kUnixOrphan,  // a connected unix stream/seqpacket socket whose peer is closed (sock_type)
  kUnixPair,    // one end of a socketpair whose other end the program holds (`peer`)
  kConsole,     // the program's vos pty (ProcessImage::console): reopened on the new one
  kFifo,        // a FIFO (named pipe) opened by its path, with the unread bytes (`data`, `size`)
};

struct FdState {
  int32_t fd = 0;
  FdKind kind = FdKind::kFile;
  int32_t flags = 0;  // F_GETFL
  bool cloexec = false;
  std::string path;
  uint64_t pos = 0;
  uint64_t size = 0;  // regular files: checked on restore
  int64_t mtime_ns = 0;
  uint64_t ino = 0;   // pipe/memfd identity, so ends and dups are matched on restore
  uint64_t dev = 0;   // regular files: st_dev; with `ino`, several fds of one file
  uint32_t mode = 0;  // regular files: permission bits (st_mode & 07777)
  // Regular files. The file had no name left: its content is `data`, and the restore creates it
  // again, unnamed, in the directory of `path`.
  bool deleted = false;
  // Regular files open for writing: XXH3-64 (16 hex digits) of the first `size` bytes, hashed
  // once the program ran on; what `vos restore --files=rewind` checks before it cuts the file
  // back to `size`. Empty: not recorded.
  std::string content_hash;
  int32_t stdio = -1;  // kStdio: which of vos restore's stdin/out/err it becomes
  bool pipe_write_end = false;
  BlobRef data;             // pipe: unread bytes; memfd, deleted or --with-files file: contents
  uint64_t count = 0;       // eventfd counter; timerfd ticks
  int32_t clockid = 0;      // timerfd
  int64_t interval_ns = 0;  // timerfd
  int64_t value_ns = 0;     // timerfd: remaining time to next expiry
  uint64_t sigmask = 0;     // signalfd
  std::vector<EpollTarget> epoll;
  std::string sockaddr;  // listening sockets: "127.0.0.1:8080", "[::1]:80", "@abstract", "/path"
  int32_t backlog = 0;
  int32_t sock_type = 0;
  bool semaphore = false;  // eventfd
  // kUnixPair: the other end's inode (its FdState::ino), and the messages waiting in this end's
  // receive queue (`data` holds their bytes back to back; a stream socket's are one "message").
  uint64_t peer = 0;
  std::vector<uint32_t> messages;
  uint8_t shutdown = 0;  // kUnixPair: SHUT_RD (1) / SHUT_WR (2) bits this end was shut down with
  int32_t dup_of = -1;   // shares its open file description with this lower fd
  // kStdio on a terminal: its mode (struct termios) and window size when captured.
  BlobRef termios;
  uint16_t tty_rows = 0;
  uint16_t tty_cols = 0;
  // Locks set through this open file description (fdinfo "lock:" lines); only on the lowest fd
  // of a dup group.
  std::vector<FileLock> locks;
  // Process trees: a number (from 1) naming an object the whole tree shares, created once by the
  // restore and handed to every process that holds it: an open file description held by several
  // processes (one offset), or an end of a pipe (both ends of a pipe are made together). 0: this
  // process's own.
  uint32_t tree_desc = 0;
};

// The program's vos pty (the top-level process only): what the terminal holds besides the
// processes' fds on it. Binary fields are hex.
struct ConsoleState {
  bool present = false;
  std::string termios;  // struct termios of the slave
  uint16_t rows = 0, cols = 0;
  int32_t foreground = 0;  // foreground process group (namespace numbering); 0: none
  int32_t session = 0;     // the session whose controlling terminal it is; 0: none
  std::string input;       // typed and not read yet
  std::string screen;      // bytes that redraw the screen, with the modes the program set
};

struct ProcessImage {
  std::string name;  // the vos name (vos ps, vos checkpoint NAME)
  std::vector<std::string> argv;
  std::string exe;
  std::string cwd;
  int32_t pid = 0;          // as the program sees it (inside its pid namespace)
  int32_t ns_last_pid = 0;  // the last pid its namespace handed out (0: not recorded)
  int32_t pgid = 0;
  int32_t sid = 0;
  int32_t ppid = 0;  // its parent, as the program sees it (1: vos's init, an orphan's reaper)
  // Ended, not yet reaped by its parent: restored as a process that ends with `exit_status` (a
  // wait status) once the tree is rebuilt, for the parent to collect.
  bool zombie = false;
  // Stands for the ended leader of a group or session its members are still in: restored as a
  // child of init that makes them, then ends (reaped by init). Always `zombie` too.
  bool helper = false;
  int32_t exit_status = 0;
  // Its process group was its terminal's foreground group (a full-screen program, a shell's
  // foreground job): it must be again on the terminal it is restored on.
  bool tty_foreground = false;
  bool stopped = false;  // by job control (Ctrl-Z, SIGSTOP): stopped again once restored
  uint32_t umask = 022;
  // Whom it ran as (real ids, as the host numbers them): root restores it as that user.
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups
  uint32_t personality = 0;
  bool thp_disabled = false;  // prctl(PR_SET_THP_DISABLE): no huge pages for this process
  std::vector<std::pair<uint64_t, uint64_t>> rlimits;  // index = RLIMIT_*
  // mm fields for PR_SET_MM_MAP
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  BlobRef auxv;
  int64_t monotonic_ns = 0;  // the program's CLOCK_MONOTONIC when captured
  int64_t boottime_ns = 0;
  int64_t realtime_ns = 0;
  std::vector<MemoryArea> areas;
  std::vector<ThreadState> threads;  // threads[0] is the main thread
  std::vector<SignalAction> actions;
  std::vector<BlobRef> shared_pending;  // siginfo_t queued to the whole process
  std::vector<ITimer> itimers;
  std::vector<PosixTimer> posix_timers;  // by ascending id
  std::vector<FdState> fds;
  std::vector<SysvShm> sysv_shm;       // the segments of its IPC namespace, by ascending id
  std::vector<SysvSem> sysv_sem;       // its semaphore sets, by ascending id
  std::vector<SysvMsgQueue> sysv_msg;  // its message queues, by ascending id
  uint64_t pages_stored = 0;
  std::string image_id;              // random, names this image to the images built on it
  std::vector<ParentImage> parents;  // images whose pages this one refers to (incremental)
  uint64_t pages_inherited = 0;      // pages found in parents rather than stored here
  // Taken with --incremental: the restored program's writes are tracked again from the restore
  // on, so that its next incremental image builds on this one.
  bool writes_tracked = false;
  // A process tree (the top-level process only): every other process of the program, parents
  // before their children. They share this image's blobs and pages sections; their own
  // `processes` are empty.
  std::vector<ProcessImage> processes;
  ConsoleState console;
};

nlohmann::json to_json(const ProcessImage& p);
Result<ProcessImage> process_from_json(const std::string& text);

// A new random image id (32 hex digits): what an incremental image names its parents by.
std::string new_image_id();

const char* area_kind_name(AreaKind k);
const char* fd_kind_name(FdKind k);
// "POSIX write lock on bytes 100-199", "OFD read lock from byte 20 to EOF", "flock LOCK_SH".
std::string describe_lock(const FileLock& l);
// Whether any fd holds a lock (such an image needs kImageVersionFileLocks).
bool has_file_locks(const ProcessImage& p);

}  // namespace vos::image
