// Host side (keeper). Which pages of a program were written since a moment: the basis of
// incremental checkpoints. A userfaultfd in asynchronous write-protect mode is created inside the
// program (one injected syscall) and then held only by vos; the kernel clears a page's protection
// itself on the first write, so the program never stops for it, and PAGEMAP_SCAN reports and
// re-protects the written pages in one call. Soft-dirty bits would do the same but are not
// available on every kernel (not on this project's reference machine).
//
// The userfaultfd also asks for mremap events: without them the kernel stops tracking memory
// the program moves (and a mapping merged with it), which then had to be stored in full at every
// checkpoint. With them the moved pages keep their protection and a thread of the tracker reads
// each move (the program's mremap waits until it is read) for the checkpoint code to follow.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
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
  // nullopt if the range is not (entirely) tracked, e.g. a mapping created since.
  Result<std::optional<PageRanges>> take_written(uint64_t start, uint64_t end);
  // Bytes of tracked memory in [start, end) written since they were last protected, leaving them
  // as they are: what take_written() would find now.
  Result<uint64_t> written_bytes(uint64_t start, uint64_t end);
  // Pages of [start, end) that hold the program's own data (present or swapped, not a file's
  // page cache page nor the shared zero page).
  Result<PageRanges> private_pages(uint64_t start, uint64_t end);

  // Opens /proc/PID/pagemap again: the program may have exec'ed a new address space since.
  Status reopen();

  // A move the program made with mremap: [from, from + len) is now at [to, to + len).
  struct Move {
    uint64_t from = 0, to = 0, len = 0;
  };
  // The moves made since the last call, in order. Every move the program's mremap returned
  // from is in it (the call waits until the tracker has read it).
  std::vector<Move> take_moves();

  pid_t pid() const { return pid_; }

  WriteTracker(WriteTracker&&) noexcept;
  WriteTracker& operator=(WriteTracker&&) noexcept;
  ~WriteTracker();

 private:
  struct MoveLog;
  WriteTracker(pid_t pid, UniqueFd uffd, UniqueFd pagemap, std::unique_ptr<MoveLog> moves);
  // Sets up `uffd`, made by process `pid`, for asynchronous write-protect.
  static Result<WriteTracker> adopt(pid_t pid, UniqueFd uffd);
  Result<PageRanges> scan(uint64_t start, uint64_t end, uint64_t flags, uint64_t inverted,
                          uint64_t mask, uint64_t anyof);

  pid_t pid_;
  UniqueFd uffd_;
  UniqueFd pagemap_;
  std::unique_ptr<MoveLog> moves_;  // after uffd_: its reader thread ends before uffd_ closes
};

}  // namespace vos::capture
