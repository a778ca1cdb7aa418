// Host side (keeper of a program restored with --lazy). The server of one address space: the
// process runs before its anonymous memory is back; a missing-page userfaultfd (created by the
// restorer, held only by the keeper) reports each first touch, and the server copies that page's
// neighbourhood in from the image (or a zero page where the image has none), while a second
// thread copies everything else in address order. Once all stored pages are in, the userfaultfd
// is closed and the process runs unassisted; memory an eager restore would have put in huge pages
// is then collapsed into them. A process that forks meanwhile hands its server a userfaultfd of
// the child's copy (UFFD_EVENT_FORK), whose missing pages are the parent's at that moment: it
// gets a server of its own. The servers of one program form a LazyRestore (lazy_restore.h).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "restore/huge_pages.h"
#include "restore/restore.h"

namespace vos::restore {

struct LazyStats {
  uint64_t faults = 0;            // first touches served on demand
  uint64_t fault_pages = 0;       // pages copied for them
  uint64_t zero_pages = 0;        // touched pages the image has no data for
  uint64_t prefetched_pages = 0;  // pages copied by the background pass
  // Stored pages the server found in already (UFFDIO_COPY: EEXIST), not copied again: those the
  // restorer read before the program ran (restore/eager_pages.h).
  uint64_t already_in_pages = 0;
  double done_ms = 0;  // from start() until every stored page was in
  std::string error;   // empty if all went well
  // Afterwards, huge-page memory (filled in 4 KiB pages) collapsed into huge pages again.
  uint64_t huge_collapsed_bytes = 0;  // in calls the kernel completed
  double huge_collapse_ms = 0;
  std::string huge_collapse_error;  // why some or all of it stayed in 4 KiB pages
};

class LazyRestore;

// Said in LazyStats::error when the process ended before all of its memory was in.
extern const char* const kLazyProcessEnded;

class LazyServer {
 public:
  struct Source {
    uint64_t len = 0;
    const char* data = nullptr;  // the page data, in a mapping of its image (or memfd)
  };
  using Sources = std::map<uint64_t, Source>;  // by address: the stored pages not yet in

  // `pid` is 0 for a forked process (its huge pages are then left to khugepaged). `group` hears
  // of forks, failures and the end (LazyRestore::server_done, on the server's own thread).
  static Result<std::unique_ptr<LazyServer>> start(LazyRestore& group, pid_t pid, UniqueFd uffd,
                                                   Sources sources,
                                                   std::vector<HugeRange> collapse);
  ~LazyServer();
  LazyServer(const LazyServer&) = delete;
  LazyServer& operator=(const LazyServer&) = delete;

  // Joins the server's threads (once everything is in, or the process ended).
  void join();
  // Huge-page collapsing is best effort: stops at the next step.
  void stop_collapsing() { finishing_ = true; }

 private:
  struct Copied {
    uint64_t pages = 0;       // copied now
    uint64_t already_in = 0;  // found in memory already
    uint64_t absent = 0;      // in no mapping served by this userfaultfd (left in sources_)
  };
  LazyServer() = default;
  void serve_faults();
  void prefetch();
  // Copies in every page still in sources_; EAGAIN if some must wait for the program's
  // unmap or move to be read, or were in no served mapping (see copy_in).
  Status copy_all_remaining();
  // False if it must be tried again once the program's pending unmap or move went through.
  bool serve_fault(uint64_t addr);
  // The program discarded [start, end) (MADV_DONTNEED, munmap): never fill it from the image.
  // Also how pages leave sources_ once they are in.
  void forget(uint64_t start, uint64_t end);
  // The program moved [from, from + len) to `to` (mremap): so did the pages still to fill.
  void moved(uint64_t from, uint64_t to, uint64_t len);
  Sources::const_iterator find(uint64_t addr) const;
  // Copies [addr, addr + len) (inside one source, from `data`) and forgets what is now in.
  // A page in no mapping this userfaultfd serves (ENOENT: the program unmapped or moved it and
  // that event is not read yet, or a range now spans two mappings) is skipped and kept.
  Result<Copied> copy_in(uint64_t addr, uint64_t len, const char* data);
  uint64_t remaining_bytes() const;
  // The program's huge-page memory came back in 4 KiB pages (UFFDIO_COPY fills no others): has
  // the kernel collapse it (process_madvise MADV_COLLAPSE), as an eager restore would have
  // loaded it. Best effort: the program is right either way, only slower.
  void collapse_huge_blocks();
  // mu_, taken by the fault thread (first touches, the program's map changes) before the
  // prefetch thread, which asks for it again after every block.
  std::unique_lock<std::mutex> lock_for_faults();
  std::unique_lock<std::mutex> lock_for_prefetch();

  pid_t pid_ = 0;
  UniqueFd uffd_;
  UniqueFd stop_;  // eventfd: the prefetch is done, the fault thread may stop
  std::mutex mu_;  // guards sources_ against the program's unmaps and moves
  Sources sources_;
  LazyRestore* group_ = nullptr;
  LazyStats stats_;
  std::atomic<uint64_t> faults_{0}, fault_pages_{0}, zero_pages_{0}, already_in_pages_{0};
  std::atomic<int> fault_side_waiting_{0};  // see lock_for_prefetch
  std::vector<HugeRange> collapse_;         // see collapse_huge_blocks
  std::atomic<bool> finishing_{false};      // stop_collapsing() was called
  std::thread fault_thread_;
  std::thread prefetch_thread_;
};

}  // namespace vos::restore
