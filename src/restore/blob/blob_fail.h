// Restorer last stage (no libc): the one way a step fails. Writes "restore: STEP at ADDR failed:
// errno E" to the keeper's log pipe and ends the process with exit status 70.
#pragma once

namespace vos::blob {

[[noreturn]] void fail(const char* step, long err, unsigned long addr);

}  // namespace vos::blob
