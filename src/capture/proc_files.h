// Host side. Readers for the /proc files capture relies on.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vos::capture {

Result<std::string> read_text_file(const std::string& path);
// The thread ids of process `pid` (/proc/PID/task).
Result<std::set<pid_t>> list_tasks(pid_t pid);
Result<std::string> read_link(const std::string& path);
// /proc/PID/stat split into fields, numbered as proc(5) does from 1 ("pid", "comm" stand in for
// the first two: the command name may contain spaces and parentheses).
Result<std::vector<std::string>> read_stat_fields(pid_t pid);
// The process's resident memory (/proc/PID/statm), file-backed pages included.
Result<uint64_t> resident_bytes(pid_t pid);
// The part of it that is the program's own (anonymous and shared memory: RssAnon + RssShmem),
// which is what an image stores.
Result<uint64_t> private_resident_bytes(pid_t pid);
// MemAvailable of /proc/meminfo: memory the machine can give without swapping.
Result<uint64_t> available_memory_bytes();

struct MapsEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  bool r = false, w = false, x = false, shared = false;
  uint64_t offset = 0;
  uint64_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;
  std::string name;
};

Result<std::vector<MapsEntry>> read_maps(pid_t pid);
// Parses "/proc/PID/maps" text; exposed for unit tests.
Result<std::vector<MapsEntry>> parse_maps(const std::string& text);

// "key: value" files (/proc/PID/status, fdinfo) into a map; later duplicate keys win, except that
// every line is also kept in order for multi-line records such as epoll's "tfd:" lines.
struct KeyValues {
  std::map<std::string, std::string> values;
  std::vector<std::string> lines;
  std::string get(const std::string& key) const {
    auto it = values.find(key);
    return it == values.end() ? std::string() : it->second;
  }
};
KeyValues parse_key_values(const std::string& text);

}  // namespace vos::capture
