// Host side (CLI): `vos logs NAME`, the output of a program started or restored with --detach
// whose stdout/stderr would have been a terminal or a pipe (see launch.cc's detach_stdio).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "keeper/registry.h"

namespace vos::cli {

int cmd_logs(const std::string& name, bool follow) {
  std::string path = keeper::log_path(name);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (keeper::find_entry(name)) {
      std::fprintf(stderr,
                   "vos logs: %s has no log: its output goes where it was started with (a file, "
                   "or the terminal of a vos run without --detach)\n",
                   name.c_str());
    } else {
      std::fprintf(stderr, "vos logs: no log of a program named '%s' (see vos ps)\n", name.c_str());
    }
    return 1;
  }
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      if (std::fwrite(buf, 1, static_cast<size_t>(n), stdout) != static_cast<size_t>(n)) {
        return 1;  // stdout closed (a pager quit)
      }
      continue;
    }
    if (!follow || !keeper::name_in_use(name)) {
      if (follow && n == 0 && ::read(fd, buf, 1) > 0) {
        ::lseek(fd, -1, SEEK_CUR);  // written just before the program ended
        continue;
      }
      break;
    }
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::close(fd);
  return 0;
}

}  // namespace vos::cli
