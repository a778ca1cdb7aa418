// Restorer last stage (no libc): eager loading of private anonymous memory by UFFDIO_COPY, and
// of huge-page memory by pread right after each chunk's check (loads_by_read).
//
// An area registered with a missing-page userfaultfd is filled straight from a read-only
// mapping of the image: the kernel allocates each page and copies into it once. Populating
// first (clearing every page) and reading into it afterwards touches the memory twice, which
// in a VM whose fresh memory is slow to touch nearly doubled the cost of a restore. Big loads
// are split with one short-lived loader thread, so both halves are copied at once.
#pragma once

#include <stdint.h>

#include "abi/restore_abi.h"

namespace vos::blob {

// Private anonymous memory that is loaded now, and not into huge pages (UFFDIO_COPY fills
// 4 KiB pages; populating a huge-page area allocates huge pages).
bool loads_by_copy(const vos::abi::BlobArea& ar);

struct CopyLoader {
  long uffd = -1;               // < 0: userfaultfd unavailable, load the usual way
  uint64_t registered_end = 0;  // areas below this index that loads_by_copy are registered
  bool stopped = false;         // a registration failed: no later area is registered
};

// Huge-page memory read in by run_copy_loader (after checking each chunk) rather than when
// the area is mapped: only when the page data is checked.
bool loads_by_read(const vos::abi::RestoreArgs* a, const vos::abi::BlobArea& ar);

// pread()s [vaddr, vaddr + len) from `offset` of `fd`, all of it.
void read_pages(long fd, uint64_t vaddr, uint64_t len, uint64_t offset);

// Copies the kRunEager runs among runs[0, nruns) in by UFFDIO_COPY through `uffd` (the lazy
// userfaultfd, their area registered with it): 4 KiB pages, never a huge page. Runs without data
// (fd -1) get the zero page.
void copy_eager_runs(long uffd, const vos::abi::BlobPageRun* runs, uint64_t nruns);

// Creates the userfaultfd if any area will need it.
CopyLoader open_copy_loader(const vos::abi::RestoreArgs* a);

// Registers area `index` (just mapped, read-write). False if it must be loaded the usual way;
// from then on no later area is registered either.
bool register_for_copy(CopyLoader& loader, const vos::abi::BlobArea& ar, uint64_t index);

// Copies every registered area's runs (and reads those that loads_by_read), then unregisters
// them, sets their final protection and closes the userfaultfd.
void run_copy_loader(const vos::abi::RestoreArgs* a, CopyLoader& loader);

}  // namespace vos::blob
