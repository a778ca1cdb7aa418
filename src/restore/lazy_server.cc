// Host side (keeper).
#include "restore/lazy_server.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

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

Result<std::unique_ptr<LazyServer>> LazyServer::start(
    pid_t pid, UniqueFd uffd, const LoadedImage& img,
    std::function<void(const LazyStats&)> on_done) {
  std::unique_ptr<LazyServer> s(new LazyServer());
  s->pid_ = pid;
  s->uffd_ = std::move(uffd);
  s->img_ = &img;
  s->on_done_ = std::move(on_done);
  s->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->stop_.valid()) {
    return sys_error("eventfd");
  }
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
    s->images_.push_back(std::move(*m));
  }
  for (const auto& a : img.proc.areas) {
    if (a.kind != image::AreaKind::kAnon || a.shared) {
      continue;  // read in full by the restorer, as in a normal restore
    }
    for (const auto& r : a.pages) {
      uint64_t base = r.image == 0 ? img.pages.base : img.parents[r.image - 1].pages.base;
      const MappedFile& from = s->images_[r.image];
      if (!from.contains(base + r.offset, r.npages * kPage)) {
        return user_error("lazy restore: pages at {:#x} lie past the end of their image", r.vaddr);
      }
      s->sources_.push_back({r.vaddr, r.npages * kPage, from.data() + base + r.offset});
    }
  }
  std::sort(s->sources_.begin(), s->sources_.end(),
            [](const Source& x, const Source& y) { return x.vaddr < y.vaddr; });
  s->fault_thread_ = std::thread([p = s.get()] { p->serve_faults(); });
  s->prefetch_thread_ = std::thread([p = s.get()] { p->prefetch(); });
  return s;
}

LazyServer::~LazyServer() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  if (prefetch_thread_.joinable()) {
    prefetch_thread_.join();
  }
  if (fault_thread_.joinable()) {
    fault_thread_.join();
  }
}

const LazyServer::Source* LazyServer::find(uint64_t addr) const {
  auto it = std::upper_bound(sources_.begin(), sources_.end(), addr,
                             [](uint64_t a, const Source& s) { return a < s.vaddr; });
  if (it == sources_.begin()) {
    return nullptr;
  }
  --it;
  return addr < it->vaddr + it->len ? &*it : nullptr;
}

Result<uint64_t> LazyServer::copy_in(const Source& s, uint64_t addr, uint64_t len) {
  const char* from = s.data + (addr - s.vaddr);
  uint64_t done = 0;
  while (done < len) {
    uffdio_copy c{};
    c.dst = addr + done;
    c.src = reinterpret_cast<uint64_t>(from + done);
    c.len = len - done;
    if (::ioctl(uffd_.get(), UFFDIO_COPY, &c) == 0) {
      done += static_cast<uint64_t>(c.copy);
      continue;
    }
    int err = errno;
    if (c.copy > 0) {
      done += static_cast<uint64_t>(c.copy);  // partial: go on from there
    } else if (err == EEXIST) {
      wake(uffd_.get(), addr + done, kPage);  // already in (the other thread was first)
      done += kPage;
    } else if (err == EAGAIN) {
      // The program is unmapping or moving memory: the fault thread must read that event
      // before anything can be copied; the caller retries without holding the lock.
      return Error(EAGAIN, fmt::format("UFFDIO_COPY at {:#x}: memory map changing", addr + done));
    } else {
      return Error(err, fmt::format("UFFDIO_COPY at {:#x}", addr + done));
    }
  }
  return done;
}

void LazyServer::forget(uint64_t start, uint64_t end) {
  std::vector<Source> kept;
  for (const auto& src : sources_) {
    uint64_t s_end = src.vaddr + src.len;
    if (s_end <= start || src.vaddr >= end) {
      kept.push_back(src);
      continue;
    }
    if (src.vaddr < start) {
      kept.push_back({src.vaddr, start - src.vaddr, src.data});
    }
    if (s_end > end) {
      kept.push_back({end, s_end - end, src.data + (end - src.vaddr)});
    }
  }
  sources_ = std::move(kept);
}

void LazyServer::moved(uint64_t from, uint64_t to, uint64_t len) {
  std::vector<Source> inside;
  for (const auto& src : sources_) {
    uint64_t lo = std::max(src.vaddr, from);
    uint64_t hi = std::min(src.vaddr + src.len, from + len);
    if (lo < hi) {
      inside.push_back({lo - from + to, hi - lo, src.data + (lo - src.vaddr)});
    }
  }
  forget(from, from + len);
  forget(to, to + len);  // whatever was there before is gone
  sources_.insert(sources_.end(), inside.begin(), inside.end());
  std::sort(sources_.begin(), sources_.end(),
            [](const Source& x, const Source& y) { return x.vaddr < y.vaddr; });
}

bool LazyServer::serve_fault(uint64_t addr) {
  std::lock_guard<std::mutex> lock(mu_);
  const Source* s = find(addr);
  if (s == nullptr) {
    uffdio_zeropage z{};
    z.range = {addr, kPage};
    if (::ioctl(uffd_.get(), UFFDIO_ZEROPAGE, &z) != 0) {
      if (errno == EAGAIN) {
        return false;
      }
      wake(uffd_.get(), addr, kPage);
    }
    zero_pages_++;
    return true;
  }
  uint64_t end = std::min(s->vaddr + s->len, addr + kFaultBlock);
  auto n = copy_in(*s, addr, end - addr);
  if (n) {
    fault_pages_ += *n / kPage;
  } else if (n.error().err() == EAGAIN) {
    return false;
  } else {
    wake(uffd_.get(), addr, kPage);
  }
  return true;
}

void LazyServer::serve_faults() {
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
      std::lock_guard<std::mutex> lock(mu_);
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
  for (size_t i = 0; i < sources_.size(); ++i) {
    const Source s = sources_[i];
    for (uint64_t at = s.vaddr; at < s.vaddr + s.len;) {
      uint64_t len = std::min(kPrefetchBlock, s.vaddr + s.len - at);
      auto n = copy_in(s, at, len);
      if (!n) {
        return std::move(n).error();
      }
      at += len;
    }
  }
  return {};
}

void LazyServer::prefetch() {
  auto started = std::chrono::steady_clock::now();
  auto pause = [] { std::this_thread::sleep_for(std::chrono::microseconds(200)); };
  // In address order, one block per lock, so that first touches are served in between.
  for (uint64_t cursor = 0; stats_.error.empty();) {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = std::upper_bound(sources_.begin(), sources_.end(), cursor,
                               [](uint64_t a, const Source& s) { return a < s.vaddr + s.len; });
    if (it == sources_.end()) {
      break;
    }
    uint64_t at = std::max(cursor, it->vaddr);
    uint64_t len = std::min(kPrefetchBlock, it->vaddr + it->len - at);
    auto n = copy_in(*it, at, len);
    if (!n && n.error().err() == EAGAIN) {
      lock.unlock();
      pause();
      continue;
    }
    if (!n) {
      stats_.error = n.error().err() == ESRCH ? "the program ended before all of its memory was in"
                                              : n.error().describe();
      break;
    }
    stats_.prefetched_pages += len / kPage;
    cursor = at + len;
  }
  // Pages moved behind the cursor meanwhile: everything still stored must be in before the
  // userfaultfd goes, since afterwards an untouched page reads as zeros.
  while (stats_.error.empty()) {
    std::unique_lock<std::mutex> lock(mu_);
    auto st = copy_all_remaining();
    if (st) {
      break;
    }
    if (st.error().err() != EAGAIN) {
      stats_.error = st.error().describe();
      break;
    }
    lock.unlock();
    pause();
  }
  if (stats_.error.empty()) {
    // The program already runs on these pages: damage found now ends it rather than letting it
    // go on with wrong memory.
    if (auto v = verify_pages(*img_); !v) {
      stats_.error = v.error().describe();
      ::kill(pid_, SIGKILL);
    }
  } else {
    ::kill(pid_, SIGKILL);  // some of its memory could not be brought back
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
  stats_.faults = faults_;
  stats_.fault_pages = fault_pages_;
  stats_.zero_pages = zero_pages_;
  stats_.prefetched_pages -= std::min(stats_.prefetched_pages, fault_pages_.load());
  if (on_done_) {
    on_done_(stats_);
  }
}

}  // namespace vos::restore
