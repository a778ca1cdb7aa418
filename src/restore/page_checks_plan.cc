// Host side (restore front end).
#include "restore/page_checks_plan.h"

#include <algorithm>

#include "image/process_model.h"

namespace vos::restore {

Result<PageChecksPlan> plan_page_checks(const std::vector<CheckedSource>& sources,
                                        const std::vector<abi::BlobArea>& areas,
                                        const std::vector<abi::BlobPageRun>& runs) {
  PageChecksPlan plan;
  for (const auto& s : sources) {
    abi::BlobPageCheck c{};
    c.fd = s.fd;
    c.pages_offset = s.pages_offset;
    c.pages_size = s.pages_size;
    c.chunk_size = s.sums->chunk_size;
    c.nchunks = s.sums->sums.size();
    c.first_chunk = plan.nchunks;
    plan.nchunks += c.nchunks;
    plan.checks.push_back(c);
  }
  std::vector<std::pair<uint64_t, abi::BlobCopyPiece>> by_chunk;
  for (size_t i = 0; i < areas.size(); ++i) {
    if (!abi::area_loads_by_copy(areas[i]) && !abi::area_loads_by_read(areas[i])) {
      continue;  // the restorer loads these before the checks, or not at all
    }
    for (uint64_t k = 0; k < areas[i].nruns; ++k) {
      const abi::BlobPageRun& r = runs[areas[i].first_run + k];
      auto c = std::find_if(plan.checks.begin(), plan.checks.end(),
                            [&](const abi::BlobPageCheck& x) { return x.fd == r.fd; });
      if (c == plan.checks.end() || r.image_offset < c->pages_offset ||
          r.image_offset - c->pages_offset > c->pages_size ||
          r.len > c->pages_size - (r.image_offset - c->pages_offset)) {
        return user_error("corrupt image: pages at {:#x} lie outside the page data", r.vaddr);
      }
      // Split at chunk boundaries: each piece is copied right after its chunk is checked.
      for (uint64_t done = 0; done < r.len;) {
        uint64_t at = r.image_offset + done - c->pages_offset;
        uint64_t chunk = at / c->chunk_size;
        uint64_t n = std::min(r.len - done, (chunk + 1) * c->chunk_size - at);
        by_chunk.push_back(
            {c->first_chunk + chunk,
             {r.vaddr + done, n, r.image_offset + done, r.fd, static_cast<uint32_t>(i)}});
        done += n;
      }
    }
  }
  std::stable_sort(by_chunk.begin(), by_chunk.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  plan.piece_start.assign(plan.nchunks + 1, 0);
  for (const auto& [chunk, piece] : by_chunk) {
    ++plan.piece_start[chunk + 1];
    plan.pieces.push_back(piece);
  }
  for (uint64_t g = 0; g < plan.nchunks; ++g) {
    plan.piece_start[g + 1] += plan.piece_start[g];
  }
  return plan;
}

}  // namespace vos::restore
