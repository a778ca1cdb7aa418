// Host side (keeper's capture; the new process's restore). One home per kind of kernel object a
// file descriptor can refer to: how vos recognises it in a live program, what it must refuse,
// what it captures and how it recreates it. The table in kinds.cc lists them in the order they
// are asked; adding a kind is one file, one line there and one test.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "capture/proc_files.h"
#include "fds/unix_diag.h"
#include "image/process_model.h"

namespace vos::fds {

// A socket's identity, read from a copy of the descriptor while probing.
struct SocketInfo {
  int domain = 0;
  int type = 0;
  bool listening = false;
  std::string address;                      // getsockname, formatted as FdState::sockaddr
  std::optional<UnixSocketDiag> unix_diag;  // AF_UNIX: its peer and queue (sock_diag)
};

// What /proc says about one descriptor of the program (read before anything is frozen, and
// again at the freeze).
struct FdProbe {
  int fd = -1;
  std::string link;         // /proc/PID/fd/N
  capture::KeyValues info;  // /proc/PID/fdinfo/N
  struct stat st {};        // the object itself (stat through /proc/PID/fd/N)
  int flags = 0;            // open flags, O_CLOEXEC removed
  bool cloexec = false;
  std::optional<SocketInfo> socket;  // for sockets

  mode_t type() const { return st.st_mode & S_IFMT; }
  bool link_starts_with(std::string_view prefix) const {
    return std::string_view(link).substr(0, prefix.size()) == prefix;
  }
  bool deleted() const;  // a file whose name is gone ("... (deleted)")
};

// Every descriptor of one process, in fd order.
struct ProbeSet {
  pid_t pid = 0;
  std::vector<FdProbe> fds;
  // The program's vos log (a detached program's stdout/stderr: `vos logs`), if it has one: it
  // stands for a terminal, and is reconnected like one.
  dev_t log_dev = 0;
  ino_t log_ino = 0;
  // Process trees: the descriptors the tree's other processes hold ("pipe:[123]" and the access
  // mode), so that a pipe between two of its processes counts as the program's own.
  std::vector<std::pair<std::string, int>> elsewhere;
  // The slave of the program's vos pty (its device number), if it has one.
  dev_t console_rdev = 0;

  // Which of fds 0-2 refers to the same object as `f` (a terminal or a pipe the program shares
  // with whoever started it): `f` itself if it is one of them; -1 if none.
  int stdio_index(const FdProbe& f) const;
  bool is_log(const FdProbe& f) const {
    return log_ino != 0 && f.st.st_dev == log_dev && f.st.st_ino == log_ino;
  }
};

// `log`: the path of the program's vos log (may not exist).
Result<ProbeSet> probe_fds(pid_t pid, const std::string& log = "", dev_t console_rdev = 0);

// Where a kind's capture puts bulk data (pipe contents, memfd contents): the image's blobs.
using AddBlob = std::function<image::BlobRef(const void* data, size_t size)>;

// What a checkpoint keeps of regular files' contents (vos checkpoint --with-files,
// --file-data-limit). Deleted files are always stored: nothing else holds their content.
struct FileContentPolicy {
  static constexpr uint64_t kDefaultLimit = 256ull << 20;
  bool with_files = false;         // also the files the program has open for writing
  uint64_t limit = kDefaultLimit;  // bytes of file contents one image may hold, in all
};

// A file the program has open for writing, whose first `size` bytes are hashed once it runs
// again: hashing it while the program is stopped would lengthen its pause by a read of the file.
struct LateHash {
  int fd = -1;    // the program's fd whose FdState gets the hash
  UniqueFd file;  // opened while it was stopped: the same file, whatever the program does next
  uint64_t size = 0;
  std::string_view stored;  // instead of `file`: the content the image keeps (--with-files)
  std::string unreadable;   // neither: why vos could not read the file (it is not hashed)
};

// Where a kind's capture puts what it keeps.
struct CaptureSink {
  AddBlob add_blob;
  // Room for the `size` bytes of fd `fd`'s file content, read straight into it. It goes into
  // the blobs after all others when the image is written, once the program runs again: the
  // driver then sets the fd's data.offset (a large file is not copied while the program waits).
  std::function<char*(int fd, size_t size)> file_content;
  FileContentPolicy files;
  std::vector<LateHash> late_hashes;
};

// How `vos restore` treats the files the program had open that changed since the checkpoint
// (--files), and the image they are checked against: several fds may hold one file, whose
// record (content, hash) is kept with the lowest of them.
struct RestorePolicy {
  enum class Files {
    kCheck,   // refuse a file that is gone or changed size
    kRewind,  // bring each file back to its state at the checkpoint, or refuse
    kKeep,    // take the files as they are now
  } files = Files::kCheck;
  const image::ProcessImage* proc = nullptr;
  std::string_view blobs;
  // Bind a listening unix socket's path even though a running program listens there (the
  // original, most likely): new clients then reach the restored copy only.
  bool take_unix_sockets = false;
  // The slave of the restored program's new vos pty (`console` fds are opened on it).
  std::string console_path;
};

// State of one restore's recreation of descriptors, shared by the kinds.
struct FdRecreate {
  const image::ProcessImage& proc;
  const std::string& blobs;
  const RestorePolicy& policy;
  int stdio_copy[3] = {-1, -1, -1};  // vos restore's own stdin, stdout, stderr
  int above = 3;                     // fds from here up are free of program numbers
  // Objects several descriptors share (both ends of a pipe, a deleted file), created by the
  // first of them and kept above every program fd until all are placed; the driver closes them
  // at the end.
  std::map<std::pair<image::FdKind, uint64_t>, std::vector<int>> shared;

  std::string_view blob(const image::BlobRef& ref) const {
    return std::string_view(blobs).substr(ref.offset, ref.size);
  }
  // `fd` moved above every program fd number (closing the original).
  Result<int> lift(int fd) const;
};

class FdKindHandler {
 public:
  virtual ~FdKindHandler() = default;
  virtual image::FdKind kind() const = 0;
  // Older kinds this one restores too (kinds merged into it).
  virtual bool also_restores(image::FdKind) const { return false; }
  // Whether `f` is of this kind. The table is asked in order and the first match wins.
  virtual bool matches(const FdProbe& f, const ProbeSet& all) const = 0;
  // Before anything is frozen: why `f` cannot be checkpointed, or nothing.
  virtual Status check(const FdProbe&, const ProbeSet&) const { return {}; }
  // Bytes of file content capture() would store for `f` under `files` (counted against its
  // limit before anything is frozen, and again at the freeze).
  virtual uint64_t stored_bytes(const FdProbe&, const ProbeSet&, const FileContentPolicy&) const {
    return 0;
  }
  // While the program is frozen: fills in what this kind needs (`out` already holds the fd,
  // flags, close-on-exec, offset, link and inode).
  virtual Status capture(const FdProbe& f, const ProbeSet& all, CaptureSink& sink,
                         image::FdState& out) const = 0;
  // Kinds of stage 1 refer to other descriptors (epoll): recreated once those are placed.
  virtual int stage() const { return 0; }
  // In `vos restore`, before anything is created: why `f` cannot be recreated on this machine
  // now (a file that is gone), or nothing.
  virtual Status check_restorable(const image::FdState&, const RestorePolicy&) const { return {}; }
  // In `vos restore`, once every check passed and before the program is recreated: brings what
  // `f` depends on outside the image to its state at the checkpoint (--files=rewind).
  virtual Status prepare(const image::FdState&, const RestorePolicy&) const { return {}; }
  // In the new process: a descriptor for the object, which the caller moves to `f.fd`.
  virtual Result<int> recreate(FdRecreate& r, const image::FdState& f) const = 0;
};

// The kinds in the order they are asked.
const std::vector<const FdKindHandler*>& fd_kinds();
// The handler that recreates `kind`, or null for a kind this vos does not know.
const FdKindHandler* handler_for(image::FdKind kind);
// The handler that recreates fd `f`, or why there is none.
Result<const FdKindHandler*> handler_of(const image::FdState& f);
// Why no kind takes `f`: the refusal vos gives for it.
Error unsupported_fd(const FdProbe& f);

// Writes all of `data` to `fd` (restoring pipe and file contents).
Status write_all(int fd, std::string_view data);

}  // namespace vos::fds
