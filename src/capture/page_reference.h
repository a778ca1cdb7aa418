// Host side (keeper). The pages of the image a program was restored from, for when its writes
// since the restore are unknown: a lazy restore fills memory through its own userfaultfd, which
// cannot also track writes. The first pre-copy after such a restore compares each page it reads
// with the image's copy and goes on referring to that copy when they are equal, so its image is
// still incremental: it reads all memory, but writes only what changed.
#pragma once

#include <cstdint>
#include <vector>

#include "base/mapped_file.h"
#include "capture/page_homes.h"

namespace vos::capture {

class PageReference {
 public:
  // One image of the chain: its file, mapped, and where its pages section starts.
  struct Source {
    MappedFile map;
    uint64_t pages_base = 0;
  };

  // `homes`: where each stored page lives (PageHome::image indexes `sources`), sorted by vaddr.
  PageReference(std::vector<PageHome> homes, std::vector<Source> sources);

  // True, and remembered as kept, if the reference stores the page at `vaddr` with exactly the
  // 4096 bytes at `page`.
  bool keep_if_same(uint64_t vaddr, const char* page);
  // The pages kept since the last call, as homes in the reference's images, sorted by vaddr.
  std::vector<PageHome> take_kept();
  uint64_t kept_pages() const { return kept_total_; }
  uint64_t compared_pages() const { return compared_total_; }  // those it had a copy of

 private:
  const PageHome* home_of(uint64_t vaddr);

  std::vector<PageHome> homes_;
  std::vector<Source> sources_;
  size_t hint_ = 0;  // pages are looked up in address order: start from the last match
  std::vector<PageHome> kept_;
  uint64_t kept_total_ = 0;
  uint64_t compared_total_ = 0;
};

}  // namespace vos::capture
