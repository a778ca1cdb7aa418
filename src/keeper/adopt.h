// Host side (CLI). A program whose keeper died (killed, crashed, out of memory) runs on under
// its namespace's init, unmanaged; the next command that needs a keeper starts a new one inside
// the program's namespaces, which takes over its name and control socket.
#pragma once

#include "base/result.h"
#include "keeper/registry.h"

namespace vos::keeper {

// Starts a keeper for `e`'s program (its keeper must be dead and its init alive); returns the
// entry the new keeper registered.
Result<Entry> adopt_program(const Entry& e);

// The program named (or with host pid) `target`, with a keeper: a new one if its keeper had
// died, and then `*took_over` is set (the caller says so).
Result<Entry> served_entry(const std::string& target, bool* took_over);

}  // namespace vos::keeper
