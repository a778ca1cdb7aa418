// Host side (vos restore, before the keeper starts). Where the restorer blob preads page runs
// from: the image itself when its pages are stored plain, or a memfd holding the decompressed
// page stream. The blob knows nothing of compression; it only sees an fd and a base offset.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "image/page_reader.h"
#include "restore/restore.h"

namespace vos::restore {

namespace {

// Decodes every frame straight into the mapped memfd, frames shared out among one thread per
// CPU. Runs in `vos restore` before it unshares its pid namespace, where threads are allowed.
Status decode_all(const image::PageReader& pages, char* dst) {
  const auto& frames = pages.frames();
  unsigned n = std::max(1u, std::thread::hardware_concurrency());
  n = static_cast<unsigned>(std::min<size_t>(n, frames.size()));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<Status> results(n);
  auto work = [&](unsigned id) {
    for (size_t i; !failed && (i = next++) < frames.size();) {
      auto s = pages.decode_frame(i, dst + frames[i].logical_offset);
      if (!s) {
        results[id] = std::move(s);
        failed = true;
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned id = 1; id < n; ++id) {
    threads.emplace_back(work, id);
  }
  work(0);
  for (auto& t : threads) {
    t.join();
  }
  for (auto& r : results) {
    if (!r) {
      return std::move(r).error();
    }
  }
  return {};
}

}  // namespace

Result<PageSource> open_page_source(const image::ImageReader& reader) {
  auto pages = image::PageReader::open(reader);
  if (!pages) {
    return std::move(pages).error();
  }
  PageSource src;
  // Nothing to decode: the blob reads the image itself, and verify_pages checks those bytes.
  if (pages->stored_as_logical()) {
    src.fd = reader.fd();
    src.base = pages->pages_section().offset;
    return src;
  }
  // Close-on-exec: it is inherited by fork and clone only, and the blob closes it before the
  // program runs.
  src.owned.reset(::memfd_create("vos-restore-pages", MFD_CLOEXEC));
  if (!src.owned.valid()) {
    return sys_error("memfd for the decompressed pages of {}", reader.path());
  }
  src.fd = src.owned.get();
  uint64_t size = pages->logical_size();
  if (size == 0) {
    return src;
  }
  if (::ftruncate(src.fd, static_cast<off_t>(size)) != 0) {
    return sys_error("sizing the memfd for {} bytes of pages", size);
  }
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, src.fd, 0);
  if (map == MAP_FAILED) {
    return sys_error("mapping the memfd for {} bytes of pages", size);
  }
  Status s = decode_all(*pages, static_cast<char*>(map));
  ::munmap(map, size);
  if (!s) {
    return std::move(s).error().context("decompressing pages");
  }
  return src;
}

Status open_page_sources(LoadedImage& img) {
  auto own = open_page_source(img.reader);
  if (!own) {
    return std::move(own).error();
  }
  img.pages = std::move(*own);
  for (auto& p : img.parents) {
    auto src = open_page_source(p.reader);
    if (!src) {
      return std::move(src).error().context(fmt::format("parent image {}", p.reader.path()));
    }
    p.pages = std::move(*src);
  }
  return {};
}

}  // namespace vos::restore
