// Restorer last stage (no libc): how a step fails. Writes "restore: STEP at ADDR failed:
// errno E" to the keeper's log pipe and ends the process with exit status 70.
#pragma once

namespace vos::blob {

[[noreturn]] void fail(const char* step, long err, unsigned long addr);
// For damaged image data: "corrupt image: WHAT (at file offset OFFSET)".
[[noreturn]] void fail_corrupt(const char* what, unsigned long offset);

}  // namespace vos::blob
