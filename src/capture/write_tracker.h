// Host side (keeper). Which pages of a program were written since a moment: the basis of
// incremental checkpoints. A userfaultfd in asynchronous write-protect mode is created inside the
// program (one injected syscall) and then held only by vos; the kernel clears a page's protection
// itself on the first write, so the program never stops for it, and PAGEMAP_SCAN reports and
// re-protects the written pages in one call. Soft-dirty bits would do the same but are not
// available on every kernel (not on this project's reference machine).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "capture/page_ranges.h"

namespace vos::capture {

class PtraceSession;

class WriteTracker {
 public:
  // Needs the program frozen (`session`): the userfaultfd must be created by the program itself.
  static Result<WriteTracker> create(PtraceSession& session, uint64_t syscall_insn);
  // The same for a stopped thread `tid` of process `pid` that is not in a PtraceSession (a
  // restored program before it first runs), through the `syscall` instruction at `syscall_insn`.
  static Result<WriteTracker> create_in(pid_t pid, pid_t tid, uint64_t syscall_insn);

  // Starts tracking [start, end): registers it and write-protects every page in it. Fails for
  // memory the kernel cannot track (the caller then stores such an area in full each time).
  Status track(uint64_t start, uint64_t end);
  // Stops tracking [start, end): the next take_written() reports it untracked.
  void untrack(uint64_t start, uint64_t end);
  // The pages of [start, end) written since they were last protected, protecting them again.
  // nullopt if the range is not (entirely) tracked, e.g. a mapping created or moved since.
  Result<std::optional<PageRanges>> take_written(uint64_t start, uint64_t end);
  // Pages of [start, end) that hold the program's own data (present or swapped, not a file's
  // page cache page nor the shared zero page).
  Result<PageRanges> private_pages(uint64_t start, uint64_t end);

  // Opens /proc/PID/pagemap again: the program may have exec'ed a new address space since.
  Status reopen();

  pid_t pid() const { return pid_; }

 private:
  WriteTracker(pid_t pid, UniqueFd uffd, UniqueFd pagemap)
      : pid_(pid), uffd_(std::move(uffd)), pagemap_(std::move(pagemap)) {}
  // Sets up `uffd`, made by process `pid`, for asynchronous write-protect.
  static Result<WriteTracker> adopt(pid_t pid, UniqueFd uffd);
  Result<PageRanges> scan(uint64_t start, uint64_t end, uint64_t flags, uint64_t inverted,
                          uint64_t mask, uint64_t anyof);

  pid_t pid_;
  UniqueFd uffd_;
  UniqueFd pagemap_;
};

}  // namespace vos::capture
