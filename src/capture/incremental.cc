// Host side (keeper).
#include "capture/incremental.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>

namespace vos::capture {

namespace {

constexpr uint64_t kPage = 4096;

// Runs inheriting `ranges` from the base, numbered for this image's parents list.
void inherit(const CheckpointBase& base, const PageRanges& ranges, image::MemoryArea& area,
             std::map<uint32_t, uint32_t>& parent_of, CaptureContext& ctx) {
  for (const auto& r : ranges) {
    // First base run that ends after r.start.
    auto it = std::lower_bound(
        base.pages.begin(), base.pages.end(), r.start,
        [](const PageHome& h, uint64_t addr) { return h.vaddr + h.npages * kPage <= addr; });
    for (; it != base.pages.end() && it->vaddr < r.end; ++it) {
      uint64_t lo = std::max(r.start, it->vaddr);
      uint64_t hi = std::min(r.end, it->vaddr + it->npages * kPage);
      if (lo >= hi) {
        continue;
      }
      auto [slot, fresh] = parent_of.try_emplace(it->image, 0);
      if (fresh) {
        const BaseImage& b = base.images[it->image];
        ctx.img.parents.push_back({b.path, b.image_id});
        slot->second = static_cast<uint32_t>(ctx.img.parents.size());
      }
      area.pages.push_back({lo, (hi - lo) / kPage, it->offset + (lo - it->vaddr), slot->second});
      ctx.img.pages_inherited += (hi - lo) / kPage;
    }
  }
}

}  // namespace

Status CheckpointBase::check_images() const {
  for (const auto& b : images) {
    struct stat st {};
    if (::stat(b.path.c_str(), &st) != 0) {
      return sys_error("image {} that the next incremental image would build on", b.path);
    }
    if (static_cast<uint64_t>(st.st_size) != b.size) {
      return user_error("image {} changed since it was written (size {} bytes, was {})", b.path,
                        st.st_size, b.size);
    }
  }
  return {};
}

Status sync_tracking(CaptureContext& ctx, CheckpointBase& base, bool delta) {
  WriteTracker& tracker = *base.tracker;
  VOS_TRY(tracker.reopen(), "tracking writes");
  std::map<uint32_t, uint32_t> parent_of;  // base image index -> this image's run.image
  for (size_t idx = 0; idx < ctx.img.areas.size(); ++idx) {
    image::MemoryArea& a = ctx.img.areas[idx];
    AreaPlan& plan = ctx.area_plans[idx];
    if (!plan.trackable) {
      continue;
    }
    auto written = tracker.take_written(a.start, a.end);
    if (!written) {
      return std::move(written).error();
    }
    if (!delta) {
      if (!*written) {
        (void)tracker.track(a.start, a.end);  // untrackable memory is simply stored each time
      }
      continue;
    }
    auto own = tracker.private_pages(a.start, a.end);
    if (!own) {
      return std::move(own).error();
    }
    plan.explicit_ranges = true;
    if (!*written) {
      plan.ranges = std::move(*own);  // new or moved since the base: all of it
      (void)tracker.track(a.start, a.end);
      continue;
    }
    plan.ranges = intersect_ranges(**written, *own);
    inherit(base, subtract_ranges(*own, **written), a, parent_of, ctx);
  }
  return {};
}

void record_base(CheckpointBase& base, const CaptureContext& ctx, const std::string& path,
                 uint64_t size) {
  std::vector<BaseImage> images{{path, ctx.img.image_id, size}};
  for (const auto& p : ctx.img.parents) {
    auto it = std::find_if(base.images.begin(), base.images.end(),
                           [&](const BaseImage& b) { return b.image_id == p.image_id; });
    images.push_back(it != base.images.end() ? *it : BaseImage{p.path, p.image_id, 0});
  }
  std::vector<PageHome> pages;
  for (const auto& a : ctx.img.areas) {
    for (const auto& r : a.pages) {
      pages.push_back({r.vaddr, r.npages, r.offset, r.image});
    }
  }
  std::sort(pages.begin(), pages.end(),
            [](const PageHome& x, const PageHome& y) { return x.vaddr < y.vaddr; });
  base.images = std::move(images);
  base.pages = std::move(pages);
}

uint64_t planned_bytes(const CaptureContext& ctx) {
  uint64_t n = 0;
  for (const auto& plan : ctx.area_plans) {
    if (plan.explicit_ranges) {
      n += range_bytes(plan.ranges);
    }
  }
  return n;
}

}  // namespace vos::capture
