// Host side (vos restore). What `vos restore --files=check|rewind|keep` does with a named file
// the program had open, which may have changed since the checkpoint (a job that ran on after a
// live checkpoint went on writing its output).
#pragma once

#include "base/result.h"
#include "fds/fd_kind.h"

namespace vos::fds {

// Before anything is created: whether the file of `rec` (the fd holding its record, see
// file_record) can be taken under `policy`; a refusal names the file and the options that
// would take it.
Status check_file(const image::FdState& rec, const RestorePolicy& policy);

// --files=rewind, once every check passed: cuts a file that only grew back to its size at the
// checkpoint, or writes back the content the image holds for it (vos checkpoint --with-files).
Status rewind_file(const image::FdState& rec, const RestorePolicy& policy);

}  // namespace vos::fds
