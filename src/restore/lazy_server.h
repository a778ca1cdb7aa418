// Host side (keeper of a program restored with --lazy). The program runs before its anonymous
// memory is back: a missing-page userfaultfd (created by the restorer, held only by the keeper)
// reports each first touch, and the server copies that page's neighbourhood in from the image
// (or a zero page where the image has none), while a second thread copies everything else in
// address order. Once all stored pages are in, the page data's checksums are verified (the
// program is killed if they fail), the userfaultfd is closed and the program runs unassisted.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "restore/restore.h"

namespace vos::restore {

struct LazyStats {
  uint64_t faults = 0;            // first touches served on demand
  uint64_t fault_pages = 0;       // pages copied for them
  uint64_t zero_pages = 0;        // touched pages the image has no data for
  uint64_t prefetched_pages = 0;  // pages copied by the background pass
  double done_ms = 0;             // from start() until every stored page was in
  std::string error;              // empty if all went well
};

class LazyServer {
 public:
  // `on_done` runs on the server's thread once everything is in (or serving failed).
  static Result<std::unique_ptr<LazyServer>> start(pid_t pid, UniqueFd uffd, const LoadedImage& img,
                                                   std::function<void(const LazyStats&)> on_done);
  ~LazyServer();
  LazyServer(const LazyServer&) = delete;
  LazyServer& operator=(const LazyServer&) = delete;

 private:
  struct Source {
    uint64_t vaddr = 0;
    uint64_t len = 0;
    const char* data = nullptr;  // the page data, in a mapping of its image (or memfd)
  };
  LazyServer() = default;
  void serve_faults();
  void prefetch();
  // Copies in every stored page not discarded by the program, skipping pages already there.
  Status copy_all_remaining();
  // False if it must be tried again once the program's pending unmap or move went through.
  bool serve_fault(uint64_t addr);
  // The program discarded [start, end) (MADV_DONTNEED, munmap): never fill it from the image.
  void forget(uint64_t start, uint64_t end);
  // The program moved [from, from + len) to `to` (mremap): so did the pages still to fill.
  void moved(uint64_t from, uint64_t to, uint64_t len);
  const Source* find(uint64_t addr) const;
  // Copies [addr, addr + len) from its source; returns bytes now present (copied or already
  // there), or an error.
  Result<uint64_t> copy_in(const Source& s, uint64_t addr, uint64_t len);

  pid_t pid_ = 0;
  UniqueFd uffd_;
  UniqueFd stop_;  // eventfd: the prefetch is done, the fault thread may stop
  std::mutex mu_;  // guards sources_ against the program's unmaps and moves
  std::vector<Source> sources_;
  std::vector<MappedFile> images_;  // its own mappings: the keeper drops its decompressed copies
  const LoadedImage* img_ = nullptr;
  LazyStats stats_;
  std::atomic<uint64_t> faults_{0}, fault_pages_{0}, zero_pages_{0};
  std::function<void(const LazyStats&)> on_done_;
  std::thread fault_thread_;
  std::thread prefetch_thread_;
};

}  // namespace vos::restore
