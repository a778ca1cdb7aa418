// Host side (keeper of a program restored with --lazy). The lazy restore of a whole program: one
// LazyServer per address space (each restored process, and each process one of them forks
// before its memory is all in), the image mappings they copy from, and the end of it all: once
// every server is done, the page data's checksums are verified (the program is ended if they
// fail) and the statistics, summed over the servers, are reported.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "restore/lazy_server.h"
#include "restore/restore.h"

namespace vos::restore {

// A restored process whose anonymous memory is to be served.
struct LazyTarget {
  pid_t pid = 0;
  UniqueFd uffd;
  const image::ProcessImage* proc = nullptr;
};

class LazyRestore {
 public:
  // `end_program` ends every process of the program (a page it lacks would read as zeros);
  // `on_done` runs once, on a thread of the restore, when everything is in or serving failed.
  static Result<std::unique_ptr<LazyRestore>> start(const LoadedImage& img,
                                                    std::vector<LazyTarget> targets,
                                                    std::function<void()> end_program,
                                                    std::function<void(const LazyStats&)> on_done);
  ~LazyRestore();
  LazyRestore(const LazyRestore&) = delete;
  LazyRestore& operator=(const LazyRestore&) = delete;

  // Waits until every server is done. If the program was ended (its memory could not be
  // brought back, or its page data is damaged), says why; empty otherwise.
  std::string finish();

  // For the servers. A process forked: serve its copy, whose missing pages are `sources`.
  void forked(UniqueFd uffd, LazyServer::Sources sources);
  // Ends the program, once, for `why`.
  void fail(const std::string& why);
  // A server is done (`pid` 0 for a forked process).
  void server_done(const LazyStats& stats, pid_t pid);

 private:
  LazyRestore() = default;
  Status add_server(pid_t pid, UniqueFd uffd, LazyServer::Sources sources,
                    std::vector<HugeRange> collapse);
  void report();  // the reporter thread: waits for every server, verifies, tells on_done

  const LoadedImage* img_ = nullptr;
  std::vector<MappedFile> images_;  // its own mappings: the keeper drops its decompressed copies
  std::function<void()> end_program_;
  std::function<void(const LazyStats&)> on_done_;
  pid_t first_ = 0;  // the program's first process
  std::chrono::steady_clock::time_point started_;

  std::mutex mu_;  // guards what follows
  std::condition_variable all_done_;
  std::vector<std::unique_ptr<LazyServer>> servers_;
  size_t running_ = 0;
  LazyStats total_;
  std::string killed_why_;
  std::thread reporter_;
};

}  // namespace vos::restore
