// Host side (CLI). One function per subcommand; each returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace vos::cli {

struct RunArgs {
  std::string name;
  bool detach = false;
  bool no_pty = false;
  bool json = false;
  std::vector<std::string> argv;
};
struct CheckpointArgs {
  std::string target;
  std::string dir;
  bool kill = false;
  bool json = false;
  bool incremental = false;
  bool no_precopy = false;
  std::string parent;
  std::string compress = "none";    // page codec: none, lz4, zstd
  std::string progress = "auto";    // auto, always, never (ProgressDisplay)
  std::string page_cache = "auto";  // auto, yes, no
  bool with_files = false;          // store the files the program has open for writing
  std::string file_data_limit;      // bytes of file contents an image may hold ("" = default)
};
struct RestoreArgs {
  std::string image;
  std::string latest;  // restore the newest image of this name in `dir` instead
  std::string dir;
  bool lazy = false;
  bool take_unix_sockets = false;
  std::string name;
  bool detach = false;
  bool json = false;
  std::string files = "check";  // check, rewind, keep: files changed since the checkpoint
};

struct AttachArgs {
  std::string name;
  bool shared = false;
};

int cmd_run(const RunArgs& a);
int cmd_attach(const AttachArgs& a);
int cmd_checkpoint(const CheckpointArgs& a);
int cmd_restore(const RestoreArgs& a);
int cmd_ps(bool json);
int cmd_merge(const std::string& in, const std::string& out, bool json);
int cmd_inspect(const std::string& image, bool json);
int cmd_logs(const std::string& name, bool follow);

}  // namespace vos::cli
