// Host side: see sysv_shm_layout.h.
#include "image/sysv_shm_layout.h"

#include <algorithm>
#include <map>

namespace vos::image {

namespace {

constexpr uint64_t kPage = 4096;

uint64_t page_round(uint64_t n) {
  return (n + kPage - 1) / kPage * kPage;
}

const SysvShm* find_segment(const ProcessImage& p, int32_t id) {
  for (const auto& s : p.sysv_shm) {
    if (s.id == id) {
      return &s;
    }
  }
  return nullptr;
}

}  // namespace

Result<std::vector<ShmAttachment>> shm_attachments(const ProcessImage& p) {
  std::map<std::pair<int32_t, uint64_t>, ShmAttachment> by_base;
  for (const auto& a : p.areas) {
    if (a.kind != AreaKind::kSysvShm) {
      continue;
    }
    const auto* seg = find_segment(p, a.shm_id);
    if (seg == nullptr) {
      return user_error(
          "corrupt: mapping {:#x}-{:#x} attaches System V segment {}, which the image does not "
          "have",
          a.start, a.end, a.shm_id);
    }
    uint64_t len = page_round(seg->size);
    if (a.file_offset > a.start || a.file_offset >= len || a.end - a.start > len - a.file_offset) {
      return user_error("corrupt: mapping {:#x}-{:#x} lies outside System V segment {}", a.start,
                        a.end, a.shm_id);
    }
    uint64_t base = a.start - a.file_offset;
    auto [it, fresh] = by_base.try_emplace({a.shm_id, base});
    if (fresh) {
      it->second = {a.shm_id, base, base + len, a.shm_rdonly};
      if (a.file_offset != 0) {
        return user_error(
            "corrupt: mapping {:#x}-{:#x} of System V segment {} is not the first page of its "
            "attachment",
            a.start, a.end, a.shm_id);
      }
    } else if (it->second.rdonly != a.shm_rdonly) {
      return user_error(
          "corrupt: mapping {:#x}-{:#x}: parts of one attachment of System V "
          "segment {} disagree on SHM_RDONLY",
          a.start, a.end, a.shm_id);
    }
  }
  std::vector<ShmAttachment> out;
  for (const auto& [key, att] : by_base) {
    out.push_back(att);
  }
  std::sort(out.begin(), out.end(),
            [](const ShmAttachment& x, const ShmAttachment& y) { return x.base < y.base; });
  // A later attachment may lie over what an earlier one's program unmapped (restore attaches
  // the earlier one whole first, then the later one over it, SHM_REMAP), never over a mapping
  // of the earlier one: restore would lose that mapping.
  for (const auto& a : p.areas) {
    if (a.kind != AreaKind::kSysvShm) {
      continue;
    }
    uint64_t base = a.start - a.file_offset;
    for (const auto& later : out) {
      if (later.base > base && later.base < a.end && a.start < later.end) {
        return user_error(
            "mapping {:#x}-{:#x} of System V segment {} lies inside the attachment of segment {} "
            "at {:#x}, made after it: not supported yet",
            a.start, a.end, a.shm_id, later.id, later.base);
      }
    }
  }
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> shm_holes(const ProcessImage& p,
                                                     const ShmAttachment& att) {
  std::vector<std::pair<uint64_t, uint64_t>> holes;
  uint64_t cursor = att.base;
  for (const auto& a : p.areas) {  // ascending, not overlapping
    if (a.end <= cursor || a.start >= att.end) {
      continue;
    }
    if (a.start > cursor) {
      holes.emplace_back(cursor, a.start);
    }
    cursor = std::min(a.end, att.end);
  }
  if (cursor < att.end) {
    holes.emplace_back(cursor, att.end);
  }
  return holes;
}

}  // namespace vos::image
