// Host side (CLI).
#include "restore/merge_image.h"

#include <unistd.h>

#include <vector>

#include "image/finish_image.h"
#include "restore/restore.h"

namespace vos::restore {

namespace {

constexpr uint64_t kPage = 4096;
constexpr size_t kChunk = 4 << 20;

Status copy_bytes(int fd, uint64_t offset, uint64_t size, image::ImageWriter& writer,
                  std::vector<char>& buf, const std::string& from) {
  while (size > 0) {
    size_t n = std::min<uint64_t>(size, buf.size());
    ssize_t got = ::pread(fd, buf.data(), n, static_cast<off_t>(offset));
    if (got <= 0) {
      return Error(got == 0 ? EIO : errno, fmt::format("reading {} at {}", from, offset));
    }
    VOS_TRY(writer.write(buf.data(), static_cast<size_t>(got)), "writing pages");
    offset += static_cast<uint64_t>(got);
    size -= static_cast<uint64_t>(got);
  }
  return {};
}

}  // namespace

Result<MergeStats> merge_image(const std::string& in, const std::string& out) {
  auto img = load_image(in);
  if (!img) {
    return std::move(img).error();
  }
  VOS_TRY(verify_pages(*img), "merging {}", in);
  VOS_TRY(open_page_sources(*img), "merging {}", in);
  auto writer = image::ImageWriter::create(out);
  if (!writer) {
    return std::move(writer).error();
  }
  MergeStats stats;
  stats.parents = img->parents.size();
  image::ProcessImage proc = img->proc;
  std::vector<char> buf(kChunk);
  VOS_TRY(writer->begin_section(abi::SectionType::kPages), "pages");
  auto copy_run = [&](image::PageRun& r) -> Status {
    const PageSource& src = r.image == 0 ? img->pages : img->parents[r.image - 1].pages;
    const std::string& from =
        r.image == 0 ? img->reader.path() : img->parents[r.image - 1].reader.path();
    uint64_t at = writer->section_position();
    VOS_TRY(copy_bytes(src.fd, src.base + r.offset, r.npages * kPage, *writer, buf, from),
            "page run at {:#x}", r.vaddr);
    stats.pages += r.npages;
    if (r.image != 0) {
      stats.pages_copied += r.npages;
    }
    r.offset = at;
    r.image = 0;
    return {};
  };
  for (auto& a : proc.areas) {
    for (auto& r : a.pages) {
      VOS_TRY(copy_run(r), "mapping {:#x}", a.start);
    }
  }
  for (auto& seg : proc.sysv_shm) {
    for (auto& r : seg.pages) {
      VOS_TRY(copy_run(r), "System V segment {}", seg.id);
    }
  }
  VOS_TRY(writer->end_section(), "pages");
  proc.parents.clear();
  proc.pages_stored = stats.pages;
  proc.pages_inherited = 0;
  proc.image_id = image::new_image_id();
  VOS_TRY(image::finish_image(*writer, img->blobs, proc), "writing {}", out);
  stats.bytes = writer->bytes_written();
  return stats;
}

}  // namespace vos::restore
