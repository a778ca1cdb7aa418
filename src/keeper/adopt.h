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

}  // namespace vos::keeper
