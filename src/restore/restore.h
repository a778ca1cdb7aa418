// Host side (vos restore and its keeper). Rebuilding a process from an image, in three parts:
//   load_image        in `vos restore`: read, verify every checksum, check the files still match;
//   become_program    in the new process that already has the program's pid: recreate fds and
//                     process attributes, lay out the blob region, jump into the libc-free blob;
//   finish_restore    in the keeper (the tracer): wait until every thread is parked, remove the
//                     blob, load each thread's registers and let the program run.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "capture/write_tracker.h"
#include "fds/fd_kind.h"
#include "image/image_reader.h"
#include "image/page_checksums.h"
#include "image/process_model.h"

namespace vos::restore {

// Where the logical page stream can be pread: page run `r` is at `base + r.offset` of `fd`.
struct PageSource {
  int fd = -1;
  uint64_t base = 0;
  UniqueFd owned;  // the memfd of a compressed image (fd == owned.get()); empty otherwise
};

// An image whose pages an incremental image refers to (PageRun::image = index + 1).
struct ParentPages {
  image::ImageReader reader;
  uint64_t pages_size = 0;  // logical bytes of page data
  PageSource pages;         // set by open_page_sources
  std::optional<image::PageChecksums> page_sums;
};

struct LoadedImage {
  fds::RestorePolicy policy;  // how files and sockets that changed since the checkpoint are met
  image::ImageReader reader;
  image::ProcessImage proc;
  std::string blobs;
  uint64_t pages_size = 0;           // logical bytes of page data (before any compression)
  PageSource pages;                  // set by open_page_sources before the restore starts
  std::vector<ParentPages> parents;  // parallel to proc.parents
  bool lazy = false;                 // vos restore --lazy: anonymous pages served on first touch
  std::optional<image::PageChecksums> page_sums;

  // The restorer checks the page data itself, chunk by chunk as it loads it, when every image
  // it reads from has per-chunk checksums (plain pages) and the restore is not lazy; otherwise
  // vos checks it beside the restore (verify_pages).
  bool restorer_checks_pages() const;
};

// Opens the parent image `ref` of the image at `child`: at the recorded path, else beside the
// child; fails unless it carries the recorded id.
Result<ParentPages> open_parent(const std::string& child, const image::ParentImage& ref);

// Reads and checks everything but the page data (see verify_pages), and opens the parent images
// of an incremental image: at the recorded path, else beside the image (a moved directory of
// images still restores); each must carry the recorded image id.
Result<LoadedImage> load_image(const std::string& path);
// Checks the page data's checksum, of the image and of every parent it uses; run alongside the
// restore, which must not let the program run unless this passed.
Status verify_pages(const LoadedImage& img);

// Refuses early, with a clear message, what would make the restore fail half-way, and files
// that changed since the checkpoint in a way `files` (vos restore --files) does not take.
Status check_restorable(const LoadedImage& img,
                        fds::RestorePolicy::Files files = fds::RestorePolicy::Files::kCheck);
// vos restore --lazy, as the user the program runs as: refuses when the kernel would not tell the
// keeper of the program's forks (UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE).
Status check_lazy_restorable();
// Once check_restorable passed, just before the program is recreated: brings the files it had
// open back to their state at the checkpoint where `files` says so (--files=rewind).
Status prepare_restore(const LoadedImage& img, fds::RestorePolicy::Files files);

// The image fd and pages section offset for plain pages; for compressed ones a memfd holding
// every page decompressed (multithreaded), which costs memory equal to the logical page data
// until the restore ends. Call before any namespace is entered: it creates threads.
Result<PageSource> open_page_source(const image::ImageReader& reader);
// open_page_source for the image and each of its parents.
Status open_page_sources(LoadedImage& img);

// Where the blob region ended up, sent from the new process to the keeper before the jump.
struct RegionInfo {
  int64_t pid = 0;  // the process it is in (several send theirs on one pipe: a process tree)
  uint64_t start = 0;
  uint64_t end = 0;
  int64_t lazy_fd = -1;  // the lazy userfaultfd's number in the new process, if any
  uint64_t scratch = 0;  // kPosixTimerScratch bytes of the region for the keeper's own calls
};

// Never returns on success. On failure writes the error to `log_fd` and exits.
[[noreturn]] void become_program(const LoadedImage& img, int sync_fd, int info_fd, int log_fd);

// The objects a process tree's processes share, made once by the first process before it
// creates the others, which inherit them.
struct TreeShared {
  std::map<uint32_t, int> fds;          // FdState::tree_desc -> a descriptor of it
  std::map<uint32_t, uint64_t> memory;  // MemoryArea::shared_object -> its staging address
  uint64_t staging_start = 0;           // the range holding them all (kept until mapped)
  uint64_t staging_end = 0;
  int32_t max_id = 0;  // the highest pid or thread id of the tree
};

// What become_program does once the process exists and may go on: `helpers` are the restore's
// own descriptors to close at the end; `tree` the shared objects of a process tree (null for a
// single process), `tree_member` for every process of a tree but the first (System V segments
// are the first one's to recreate).
[[noreturn]] void become_this_process(const LoadedImage& img, int info_fd, int log_fd,
                                      std::vector<int> helpers, TreeShared* tree, bool tree_member);

// The pipes through which the keeper paces the rebuilding of a process tree (tree_restore.cc).
struct TreePipes {
  int up = -1;          // write end: each process says it reached a step (its pid, 4 bytes)
  int go_members = -1;  // read end: one byte per process once all exist (and are traced)
  int go_program = -1;  // read end: one byte per living process once the zombies have ended
  int die = -1;         // read end: its end of file lets the zombies end
};

// The first process of a tree image (`img.proc.processes` not empty): creates the shared
// objects and every other process with its pid, parent, session and group (each then becomes
// itself as become_program does). Never returns.
[[noreturn]] void become_tree(LoadedImage& img, int sync_fd, int info_fd, int log_fd,
                              TreePipes pipes);

// What finish_restore hands to the keeper besides a running program, per process.
struct FinishedRestore {
  pid_t pid = 0;
  const image::ProcessImage* proc = nullptr;
  // Lazy restore: the userfaultfd (removed from the program's fd table) through which its
  // anonymous memory must be filled.
  UniqueFd lazy_uffd;
  // An image taken with --incremental (eager restore): its writes tracked from before it ran,
  // so that the next incremental checkpoint builds on this image. Empty if that failed, with
  // the reason in `untracked_why`: the next incremental image is then a full one. (Also set when
  // only some areas could not be tracked: those are stored in full.)
  std::optional<capture::WriteTracker> tracker;
  std::string untracked_why;
};

// Once the restorer has built the program (and `gate`, checking the page data, passed): takes
// over what the keeper keeps of it and lets its threads run.
Result<FinishedRestore> finish_restore(pid_t pid, const LoadedImage& img, const RegionInfo& region,
                                       const std::function<Status()>& gate);

struct RestoredProcess {
  pid_t pid = 0;
  const image::ProcessImage* proc = nullptr;
  RegionInfo region;
};
// finish_restore for every process of a tree at once: all are let run only once all are ready.
Result<std::vector<FinishedRestore>> finish_restore_tree(const std::vector<RestoredProcess>& procs,
                                                         const LoadedImage& img,
                                                         const std::function<Status()>& gate);

const std::string& blob_code();  // the embedded last stage

}  // namespace vos::restore
