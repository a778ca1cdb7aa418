// Host side (keeper).
#include "restore/lazy_restore.h"

#include <algorithm>
#include <chrono>

namespace vos::restore {

namespace {

constexpr uint64_t kPage = 4096;

void add_up(LazyStats& total, const LazyStats& s) {
  total.faults += s.faults;
  total.fault_pages += s.fault_pages;
  total.zero_pages += s.zero_pages;
  total.prefetched_pages += s.prefetched_pages;
  total.already_in_pages += s.already_in_pages;
  total.huge_collapsed_bytes += s.huge_collapsed_bytes;
  total.huge_collapse_ms = std::max(total.huge_collapse_ms, s.huge_collapse_ms);
  if (total.huge_collapse_error.empty()) {
    total.huge_collapse_error = s.huge_collapse_error;
  }
}

}  // namespace

Result<std::unique_ptr<LazyRestore>> LazyRestore::start(
    const LoadedImage& img, std::vector<LazyTarget> targets, std::function<void()> end_program,
    std::function<void(const LazyStats&)> on_done) {
  std::unique_ptr<LazyRestore> r(new LazyRestore());
  r->img_ = &img;
  r->end_program_ = std::move(end_program);
  r->on_done_ = std::move(on_done);
  r->first_ = targets.empty() ? 0 : targets.front().pid;
  r->started_ = std::chrono::steady_clock::now();
  // The page sources (the image files, or memfds of decompressed pages), mapped: a first touch
  // is served by one copy from the page cache, and the mappings outlive the keeper's fds.
  std::vector<int> fds = {img.pages.fd};
  for (const auto& p : img.parents) {
    fds.push_back(p.pages.fd);
  }
  for (int fd : fds) {
    auto m = MappedFile::map_readonly(fd);
    if (!m) {
      return std::move(m).error().context("lazy restore");
    }
    r->images_.push_back(std::move(*m));
  }
  std::vector<LazyServer::Sources> sources(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    for (const auto& a : targets[i].proc->areas) {
      if (a.kind != image::AreaKind::kAnon || a.shared) {
        continue;  // read in full by the restorer, as in a normal restore
      }
      for (const auto& run : a.pages) {
        uint64_t base = run.image == 0 ? img.pages.base : img.parents[run.image - 1].pages.base;
        const MappedFile& from = r->images_[run.image];
        if (!from.contains(base + run.offset, run.npages * kPage)) {
          return user_error(
              "lazy restore: pages at {:#x} of process {} lie past the end of their "
              "image",
              run.vaddr, targets[i].proc->pid);
        }
        sources[i][run.vaddr] = {run.npages * kPage, from.data() + base + run.offset};
      }
    }
  }
  // Counted before any starts, so that one done early does not look like the last.
  r->running_ = targets.size();
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& proc = *targets[i].proc;
    if (auto st = r->add_server(targets[i].pid, std::move(targets[i].uffd), std::move(sources[i]),
                                huge_blocks_with_pages(proc, thp_mode_for(proc)));
        !st) {
      r->fail(st.error().describe());
      std::lock_guard<std::mutex> lock(r->mu_);
      r->running_ -= targets.size() - i;
      break;
    }
  }
  r->reporter_ = std::thread([p = r.get()] { p->report(); });
  return r;
}

LazyRestore::~LazyRestore() {
  finish();
}

Status LazyRestore::add_server(pid_t pid, UniqueFd uffd, LazyServer::Sources sources,
                               std::vector<HugeRange> collapse) {
  auto server =
      LazyServer::start(*this, pid, std::move(uffd), std::move(sources), std::move(collapse));
  if (!server) {
    return std::move(server).error();
  }
  std::lock_guard<std::mutex> lock(mu_);
  servers_.push_back(std::move(*server));
  return {};
}

void LazyRestore::forked(UniqueFd uffd, LazyServer::Sources sources) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_++;
  }
  if (auto st = add_server(0, std::move(uffd), std::move(sources), {}); !st) {
    // Its untouched pages would read as zeros: a loud end instead.
    fail("a process it forked could not be served: " + st.error().describe());
    std::lock_guard<std::mutex> lock(mu_);
    running_--;
    all_done_.notify_all();
  }
}

void LazyRestore::fail(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!killed_why_.empty()) {
      return;
    }
    killed_why_ = why;
    if (total_.error.empty()) {
      total_.error = why;
    }
  }
  end_program_();
}

void LazyRestore::server_done(const LazyStats& stats, pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  add_up(total_, stats);
  if (!stats.error.empty() && total_.error.empty() &&
      (stats.error != kLazyProcessEnded || pid == first_)) {
    total_.error = stats.error;
  }
  running_--;
  all_done_.notify_all();
}

void LazyRestore::report() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    all_done_.wait(lock, [this] { return running_ == 0; });
    total_.done_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
            .count();
  }
  bool ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended = !total_.error.empty();
  }
  if (!ended) {
    // The program already runs on these pages: damage found now ends it rather than letting it
    // go on with wrong memory.
    if (auto v = verify_pages(*img_); !v) {
      fail("its memory image is damaged: " + v.error().describe());
      std::lock_guard<std::mutex> lock(mu_);
      total_.error = v.error().describe();
    }
  }
  LazyStats total;
  {
    std::lock_guard<std::mutex> lock(mu_);
    total = total_;
  }
  if (on_done_) {
    on_done_(total);
  }
}

std::string LazyRestore::finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : servers_) {
      s->stop_collapsing();
    }
  }
  if (reporter_.joinable()) {
    reporter_.join();
  }
  // Every server has reported: none is added any more (a fork is heard only while its parent's
  // server runs).
  for (auto& s : servers_) {
    s->join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  return killed_why_;
}

}  // namespace vos::restore
