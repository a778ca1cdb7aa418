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

Status pread_all(int fd, char* out, uint64_t len, uint64_t offset) {
  while (len > 0) {
    ssize_t n = ::pread(fd, out, len, static_cast<off_t>(offset));
    if (n <= 0) {
      return Error(n == 0 ? EIO : errno, fmt::format("reading page data at {}", offset));
    }
    out += n;
    len -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

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
  // Own copies of the fds: the keeper drops its decompressed copies once the program runs.
  // The page sources: the image files, or memfds of decompressed pages.
  s->image_fds_.emplace_back(::fcntl(img.pages.fd, F_DUPFD_CLOEXEC, 3));
  for (const auto& p : img.parents) {
    s->image_fds_.emplace_back(::fcntl(p.pages.fd, F_DUPFD_CLOEXEC, 3));
  }
  for (const auto& fd : s->image_fds_) {
    if (!fd.valid()) {
      return sys_error("duplicating an image fd");
    }
  }
  for (const auto& a : img.proc.areas) {
    if (a.kind != image::AreaKind::kAnon || a.shared) {
      continue;  // read in full by the restorer, as in a normal restore
    }
    for (const auto& r : a.pages) {
      uint64_t base = r.image == 0 ? img.pages.base : img.parents[r.image - 1].pages.base;
      s->sources_.push_back(
          {r.vaddr, r.npages * kPage, s->image_fds_[r.image].get(), base + r.offset});
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

Result<uint64_t> LazyServer::copy_in(const Source& s, uint64_t addr, uint64_t len,
                                     std::vector<char>& buf) {
  VOS_TRY(pread_all(s.fd, buf.data(), len, s.offset + (addr - s.vaddr)), "lazy restore");
  uint64_t done = 0;
  while (done < len) {
    uffdio_copy c{};
    c.dst = addr + done;
    c.src = reinterpret_cast<uint64_t>(buf.data() + done);
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
      continue;  // the address space changed under us: retry
    } else {
      return Error(err, fmt::format("UFFDIO_COPY at {:#x}", addr + done));
    }
  }
  return done;
}

void LazyServer::serve_faults() {
  std::vector<char> buf(kFaultBlock);
  pollfd fds[2] = {{uffd_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    uffd_msg msg{};
    while (::read(uffd_.get(), &msg, sizeof msg) == sizeof msg) {
      if (msg.event != UFFD_EVENT_PAGEFAULT) {
        continue;
      }
      uint64_t addr = msg.arg.pagefault.address & ~(kPage - 1);
      faults_++;
      const Source* s = find(addr);
      if (s == nullptr) {
        uffdio_zeropage z{};
        z.range = {addr, kPage};
        if (::ioctl(uffd_.get(), UFFDIO_ZEROPAGE, &z) != 0) {
          wake(uffd_.get(), addr, kPage);
        }
        zero_pages_++;
        continue;
      }
      uint64_t end = std::min(s->vaddr + s->len, addr + kFaultBlock);
      auto n = copy_in(*s, addr, end - addr, buf);
      if (n) {
        fault_pages_ += *n / kPage;
      } else {
        wake(uffd_.get(), addr, kPage);
      }
    }
    if (fds[1].revents & POLLIN) {
      return;  // everything is in: no fault can come for a stored page any more
    }
  }
}

void LazyServer::prefetch() {
  auto started = std::chrono::steady_clock::now();
  std::vector<char> buf(kPrefetchBlock);
  for (const auto& s : sources_) {
    for (uint64_t at = s.vaddr; at < s.vaddr + s.len && stats_.error.empty();) {
      uint64_t len = std::min(kPrefetchBlock, s.vaddr + s.len - at);
      auto n = copy_in(s, at, len, buf);
      if (!n) {
        stats_.error = n.error().describe();
        break;
      }
      stats_.prefetched_pages += len / kPage;
      at += len;
    }
  }
  if (stats_.error.empty()) {
    // The program already runs on these pages: damage found now ends it rather than letting it
    // go on with wrong memory.
    if (auto v = verify_pages(*img_); !v) {
      stats_.error = v.error().describe();
      ::kill(pid_, SIGKILL);
    }
  }
  stats_.done_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
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
