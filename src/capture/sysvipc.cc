// Host side (keeper).
#include "capture/sysvipc.h"

#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "capture/proc_files.h"

namespace vos::capture {

namespace {

// Lines after the header; a file whose header is missing is not what this code knows.
Result<std::vector<std::string>> body_lines(const std::string& text, const char* what) {
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> out;
  if (!std::getline(in, line) || line.find("key") == std::string::npos) {
    return user_error("unexpected /proc/sysvipc/{}: no header line", what);
  }
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t") != std::string::npos) {
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace

Result<std::vector<ShmListing>> parse_sysvipc_shm(const std::string& text) {
  auto lines = body_lines(text, "shm");
  if (!lines) {
    return std::move(lines).error();
  }
  std::vector<ShmListing> out;
  for (const auto& line : *lines) {
    ShmListing s;
    unsigned long long atime = 0, dtime = 0, ctime = 0;
    if (std::sscanf(line.c_str(),
                    "%" SCNd32 " %" SCNd32 " %" SCNo32 " %" SCNu64 " %" SCNd32 " %" SCNd32
                    " %" SCNu64 " %" SCNu32 " %" SCNu32 " %" SCNu32 " %" SCNu32
                    " %llu %llu %llu %" SCNu64 " %" SCNu64,
                    &s.key, &s.id, &s.mode, &s.size, &s.cpid, &s.lpid, &s.nattch, &s.uid, &s.gid,
                    &s.cuid, &s.cgid, &atime, &dtime, &ctime, &s.rss, &s.swap) != 16) {
      return user_error("unexpected line in /proc/sysvipc/shm: {}", line);
    }
    out.push_back(s);
  }
  return out;
}

Result<std::vector<IpcListing>> parse_sysvipc_ids(const std::string& text, const char* what) {
  auto lines = body_lines(text, what);
  if (!lines) {
    return std::move(lines).error();
  }
  std::vector<IpcListing> out;
  for (const auto& line : *lines) {
    IpcListing s;
    if (std::sscanf(line.c_str(), "%" SCNd32 " %" SCNd32, &s.key, &s.id) != 2) {
      return user_error("unexpected line in /proc/sysvipc/{}: {}", what, line);
    }
    out.push_back(s);
  }
  return out;
}

Result<std::vector<ShmListing>> read_sysvipc_shm() {
  auto text = read_text_file("/proc/sysvipc/shm");
  if (!text) {
    return std::move(text).error();
  }
  return parse_sysvipc_shm(*text);
}

Result<std::vector<IpcListing>> read_sysvipc_sem() {
  auto text = read_text_file("/proc/sysvipc/sem");
  if (!text) {
    return std::move(text).error();
  }
  return parse_sysvipc_ids(*text, "sem");
}

Result<std::vector<IpcListing>> read_sysvipc_msg() {
  auto text = read_text_file("/proc/sysvipc/msg");
  if (!text) {
    return std::move(text).error();
  }
  return parse_sysvipc_ids(*text, "msg");
}

}  // namespace vos::capture
