// Host side (keeper).
#include "restore/lazy_server.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "abi/kernel_uapi.h"
#include "base/cpu_class.h"
#include "restore/lazy_restore.h"

namespace vos::restore {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kFaultBlock = 16 * kPage;  // copied per first touch: neighbours come next
constexpr uint64_t kPrefetchBlock = 2 << 20;  // background copy unit

void wake(int uffd, uint64_t addr, uint64_t len) {
  uffdio_range r{addr, len};
  ::ioctl(uffd, UFFDIO_WAKE, &r);
}

}  // namespace

Result<std::unique_ptr<LazyServer>> LazyServer::start(LazyRestore& group, pid_t pid, UniqueFd uffd,
                                                      Sources sources,
                                                      std::vector<HugeRange> collapse) {
  std::unique_ptr<LazyServer> s(new LazyServer());
  s->group_ = &group;
  s->pid_ = pid;
  s->uffd_ = std::move(uffd);
  s->sources_ = std::move(sources);
  s->collapse_ = std::move(collapse);
  s->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->stop_.valid()) {
    return sys_error("eventfd");
  }
  s->fault_thread_ = std::thread([p = s.get()] { p->serve_faults(); });
  s->prefetch_thread_ = std::thread([p = s.get()] { p->prefetch(); });
  return s;
}

LazyServer::~LazyServer() {
  join();
}

void LazyServer::join() {
  // The prefetch ends by itself (all in, or the process gone) and then stops the fault thread:
  // stopping it earlier would leave the process's unmaps and moves waiting for nobody.
  if (prefetch_thread_.joinable()) {
    prefetch_thread_.join();
  }
  if (fault_thread_.joinable()) {
    fault_thread_.join();
  }
}

std::unique_lock<std::mutex> LazyServer::lock_for_faults() {
  fault_side_waiting_.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(mu_);
  fault_side_waiting_.fetch_sub(1, std::memory_order_relaxed);
  return lock;
}

std::unique_lock<std::mutex> LazyServer::lock_for_prefetch() {
  // A mutex hands itself to whoever asks first once free, and the prefetch asks again right
  // after each block: without this, a first touch waited for the whole prefetch (seen: 0.1 s
  // for 256 MiB, the program stalled that long right after its restore).
  while (fault_side_waiting_.load(std::memory_order_relaxed) > 0) {
    std::this_thread::yield();
  }
  return std::unique_lock<std::mutex>(mu_);
}

LazyServer::Sources::const_iterator LazyServer::find(uint64_t addr) const {
  auto it = sources_.upper_bound(addr);
  if (it == sources_.begin()) {
    return sources_.end();
  }
  --it;
  return addr < it->first + it->second.len ? it : sources_.end();
}

uint64_t LazyServer::remaining_bytes() const {
  uint64_t n = 0;
  for (const auto& [vaddr, src] : sources_) {
    n += src.len;
  }
  return n;
}

Result<LazyServer::Copied> LazyServer::copy_in(uint64_t addr, uint64_t len, const char* data) {
  Copied out;
  uint64_t done = 0;
  uint64_t in_from = addr;  // start of the pages known to be in, not yet forgotten
  bool page_by_page = false;
  auto settle = [&](uint64_t upto) {
    forget(in_from, upto);
    in_from = upto;
  };
  while (done < len) {
    uffdio_copy c{};
    c.dst = addr + done;
    c.src = reinterpret_cast<uint64_t>(data + done);
    c.len = page_by_page ? kPage : len - done;
    int err = ::ioctl(uffd_.get(), UFFDIO_COPY, &c) == 0 ? 0 : errno;
    if (c.copy > 0) {
      done += static_cast<uint64_t>(c.copy);  // all, or part: go on from there
      out.pages += static_cast<uint64_t>(c.copy) / kPage;
    } else if (err == EEXIST) {
      // Already in: the restorer read it before the program ran (eager_pages.h). Counted
      // apart, so that the stats say what the server copied.
      wake(uffd_.get(), addr + done, kPage);
      done += kPage;
      out.already_in++;
    } else if (err == ENOENT && !page_by_page) {
      page_by_page = true;  // find which pages lie outside the served mappings
    } else if (err == ENOENT) {
      settle(addr + done);
      done += kPage;
      in_from = addr + done;  // kept: its unmap or move event will say where it went
      out.absent++;
    } else if (err == EAGAIN) {
      // The program is unmapping or moving memory: the fault thread must read that event
      // before anything can be copied; the caller retries without holding the lock.
      settle(addr + done);
      return Error(EAGAIN, fmt::format("UFFDIO_COPY at {:#x}: memory map changing", addr + done));
    } else {
      return Error(err, fmt::format("UFFDIO_COPY at {:#x}", addr + done));
    }
  }
  settle(addr + len);
  return out;
}

void LazyServer::forget(uint64_t start, uint64_t end) {
  if (start >= end) {
    return;
  }
  auto it = sources_.upper_bound(start);
  if (it != sources_.begin()) {
    --it;  // may begin before `start` and reach into it
  }
  while (it != sources_.end() && it->first < end) {
    uint64_t s_begin = it->first;
    Source src = it->second;
    uint64_t s_end = s_begin + src.len;
    if (s_end <= start) {
      ++it;
      continue;
    }
    it = sources_.erase(it);
    if (s_begin < start) {
      sources_[s_begin] = {start - s_begin, src.data};
    }
    if (s_end > end) {
      sources_[end] = {s_end - end, src.data + (end - s_begin)};
      break;
    }
  }
}

void LazyServer::moved(uint64_t from, uint64_t to, uint64_t len) {
  std::vector<std::pair<uint64_t, Source>> inside;
  for (auto it = sources_.begin(); it != sources_.end(); ++it) {
    uint64_t lo = std::max(it->first, from);
    uint64_t hi = std::min(it->first + it->second.len, from + len);
    if (lo < hi) {
      inside.push_back({lo - from + to, {hi - lo, it->second.data + (lo - it->first)}});
    }
  }
  forget(from, from + len);
  forget(to, to + len);  // whatever was there before is gone
  sources_.insert(inside.begin(), inside.end());
}

bool LazyServer::serve_fault(uint64_t addr) {
  auto lock = lock_for_faults();
  auto s = find(addr);
  if (s == sources_.end()) {
    // No data: never stored, or already in (the prefetch was first; then this fails EEXIST).
    uffdio_zeropage z{};
    z.range = {addr, kPage};
    if (::ioctl(uffd_.get(), UFFDIO_ZEROPAGE, &z) == 0) {
      zero_pages_++;
    } else if (errno == EAGAIN) {
      return false;
    } else {
      wake(uffd_.get(), addr, kPage);
    }
    return true;
  }
  uint64_t end = std::min(s->first + s->second.len, addr + kFaultBlock);
  auto n = copy_in(addr, end - addr, s->second.data + (addr - s->first));
  if (n) {
    fault_pages_ += n->pages;
    already_in_pages_ += n->already_in;
  } else if (n.error().err() == EAGAIN) {
    return false;
  }
  // Woken in any case: a page in no served mapping any more faults the usual way when retried.
  wake(uffd_.get(), addr, kPage);
  return true;
}

void LazyServer::serve_faults() {
  cpu_class::CriticalThread critical;  // the program waits on every fault it serves
  pollfd fds[2] = {{uffd_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
  std::vector<uint64_t> deferred;  // faults to serve once the memory map stops changing
  for (;;) {
    if (::poll(fds, 2, deferred.empty() ? -1 : 1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    uffd_msg msg{};
    for (;;) {
      // Reading an unmap, discard or move event lets the program go on and change its memory at
      // once; a copy into that memory after the change would bring the image's old data back
      // (seen: a page the program discarded held its first contents again). Copies run under
      // mu_, so the event is read and its pages forgotten or moved under mu_ too.
      auto lock = lock_for_faults();
      if (::read(uffd_.get(), &msg, sizeof msg) != sizeof msg) {
        break;
      }
      switch (msg.event) {
        case UFFD_EVENT_PAGEFAULT:
          faults_++;
          deferred.push_back(msg.arg.pagefault.address & ~(kPage - 1));
          break;
        case UFFD_EVENT_REMOVE:
        case UFFD_EVENT_UNMAP:
          forget(msg.arg.remove.start, msg.arg.remove.end);
          break;
        case UFFD_EVENT_REMAP:
          moved(msg.arg.remap.from, msg.arg.remap.to, msg.arg.remap.len);
          break;
        case UFFD_EVENT_FORK:
          // The child's memory is a copy of this one's as it is now: every page still to
          // fill here is missing there too (copies into this process fail with EAGAIN from
          // the fork's start until this event is read, under mu_ like the copies).
          group_->forked(UniqueFd(static_cast<int>(msg.arg.fork.ufd)), sources_);
          break;
        default:
          break;
      }
    }
    // After the events were read, the program's unmaps and moves can finish and the copies
    // succeed; what still cannot is tried again shortly.
    std::vector<uint64_t> again;
    for (uint64_t addr : deferred) {
      if (!serve_fault(addr)) {
        again.push_back(addr);
      }
    }
    deferred = std::move(again);
    if ((fds[1].revents & POLLIN) && deferred.empty()) {
      return;  // everything is in: no fault can come for a stored page any more
    }
  }
}

Status LazyServer::copy_all_remaining() {
  bool wait = false;
  for (auto it = sources_.begin(); it != sources_.end();) {
    // copy_in forgets what it copied and keeps what it could not: go on past this source.
    uint64_t vaddr = it->first;
    Source src = it->second;
    for (uint64_t at = vaddr; at < vaddr + src.len;) {
      uint64_t len = std::min(kPrefetchBlock, vaddr + src.len - at);
      auto n = copy_in(at, len, src.data + (at - vaddr));
      if (!n) {
        return std::move(n).error();
      }
      stats_.prefetched_pages += n->pages;
      already_in_pages_ += n->already_in;
      wait = wait || n->absent > 0;
      at += len;
    }
    it = sources_.lower_bound(vaddr + src.len);
  }
  if (wait) {
    return Error(EAGAIN, fmt::format("pages at {:#x} are in no mapping served any more",
                                     sources_.begin()->first));
  }
  return {};
}

const char* const kLazyProcessEnded = "the program ended before all of its memory was in";

void LazyServer::prefetch() {
  using Clock = std::chrono::steady_clock;
  auto started = Clock::now();
  if (const char* at = std::getenv("VOS_TEST_PAUSE_AT");
      at != nullptr && std::string(at) == "lazy") {
    std::this_thread::sleep_for(std::chrono::seconds(3));  // tests only: a kill while serving
  }
  auto pause = [] { std::this_thread::sleep_for(std::chrono::microseconds(200)); };
  // In address order, one block per lock, so that first touches are served in between.
  for (uint64_t cursor = 0; stats_.error.empty();) {
    auto lock = lock_for_prefetch();
    auto it = sources_.upper_bound(cursor);
    if (it != sources_.begin() && std::prev(it)->first + std::prev(it)->second.len > cursor) {
      --it;
    }
    if (it == sources_.end()) {
      break;
    }
    uint64_t at = std::max(cursor, it->first);
    uint64_t len = std::min(kPrefetchBlock, it->first + it->second.len - at);
    auto n = copy_in(at, len, it->second.data + (at - it->first));
    if (!n && n.error().err() == EAGAIN) {
      lock.unlock();
      pause();
      continue;
    }
    if (!n) {
      stats_.error = n.error().err() == ESRCH ? kLazyProcessEnded : n.error().describe();
      break;
    }
    stats_.prefetched_pages += n->pages;
    already_in_pages_ += n->already_in;
    cursor = at + len;
  }
  // Pages moved behind the cursor, or skipped while their unmap or move was not read yet:
  // everything still stored must be in before the userfaultfd goes, since afterwards an
  // untouched page reads as zeros. Every unmap or move is read within moments (the program
  // waits for it), so pages that stay out of every served mapping longer mean a bug.
  constexpr auto kNoProgressLimit = std::chrono::seconds(10);
  auto last_progress = Clock::now();
  uint64_t left = UINT64_MAX;
  while (stats_.error.empty()) {
    auto lock = lock_for_prefetch();
    auto st = copy_all_remaining();
    if (st) {
      break;
    }
    if (st.error().err() != EAGAIN) {
      stats_.error = st.error().err() == ESRCH ? kLazyProcessEnded : st.error().describe();
      break;
    }
    if (uint64_t now_left = remaining_bytes(); now_left < left) {
      left = now_left;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > kNoProgressLimit) {
      stats_.error = st.error().describe();
      break;
    }
    lock.unlock();
    pause();
  }
  if (!stats_.error.empty() && stats_.error != kLazyProcessEnded) {
    group_->fail("its memory could not be brought back: " + stats_.error);
  }
  stats_.done_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  // The fault thread keeps answering until here: the program's unmaps and moves wait for it.
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  if (fault_thread_.joinable()) {
    fault_thread_.join();
  }
  // Closing the userfaultfd unregisters the memory: untouched pages without data become
  // ordinary zero-fill-on-demand pages again.
  uffd_.reset();
  if (stats_.error.empty()) {
    collapse_huge_blocks();
  }
  stats_.faults = faults_;
  stats_.fault_pages = fault_pages_;
  stats_.zero_pages = zero_pages_;
  stats_.already_in_pages = already_in_pages_;
  group_->server_done(stats_, pid_);
}

void LazyServer::collapse_huge_blocks() {
  if (collapse_.empty()) {
    return;
  }
  const auto started = std::chrono::steady_clock::now();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  if (!pidfd.valid()) {
    return;  // the program has ended
  }
  // A step at a time, so that a keeper told to finish does not wait for all of it.
  constexpr uint64_t kStep = 32 << 20;
  for (const auto& r : collapse_) {
    for (uint64_t at = r.start; at < r.end && !finishing_; at += kStep) {
      iovec iov{reinterpret_cast<void*>(at), std::min(kStep, r.end - at)};
      long n = ::syscall(SYS_process_madvise, pidfd.get(), &iov, 1, uapi::kMadvCollapse, 0);
      if (n >= 0) {
        stats_.huge_collapsed_bytes += static_cast<uint64_t>(n);
        continue;
      }
      int err = errno;
      if (err == ESRCH) {
        return;
      }
      // ENOMEM: part of the range is unmapped now; anything else stays for the report. EPERM
      // (no CAP_SYS_NICE) and EINVAL (kernel without MADV_COLLAPSE) fail the same way for all.
      if (err != ENOMEM && stats_.huge_collapse_error.empty()) {
        stats_.huge_collapse_error =
            Error(err, fmt::format("process_madvise(MADV_COLLAPSE) at {:#x}", at)).describe();
      }
      if (err == EPERM || err == EINVAL) {
        break;
      }
    }
  }
  stats_.huge_collapse_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace vos::restore
