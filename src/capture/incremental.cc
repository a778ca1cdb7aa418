// Host side (keeper).
#include "capture/incremental.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "capture/page_writer.h"
#include "capture/write_behind_sink.h"

namespace vos::capture {

namespace {

constexpr uint64_t kPage = 4096;

// Runs inheriting `ranges` from the base, numbered for this image's parents list.
// Pages the base finds in the image being written (pre-copied) keep image 0 and are not counted
// as inherited.
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
      if (base.images[it->image].image_id == ctx.img.image_id) {
        area.pages.push_back({lo, (hi - lo) / kPage, it->offset + (lo - it->vaddr), 0});
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

void CheckpointBase::follow_moves(bool exact) {
  if (!tracker) {
    return;
  }
  for (const auto& m : tracker->take_moves()) {
    pages = move_homes(pages, m.from, m.to, m.len);
    must_store = move_ranges(must_store, m.from, m.to, m.len);
    if (!exact) {
      // The source too: the pre-copy may have tracked and read a new mapping there already,
      // whose homes this move just dropped.
      must_store = union_ranges(must_store,
                                union_ranges({{m.from, m.from + m.len}}, {{m.to, m.to + m.len}}));
    }
  }
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
    plan.explicit_ranges = true;
    if (!*written) {
      auto own = tracker.private_pages(a.start, a.end);  // new since the base: all of it
      if (!own) {
        return std::move(own).error();
      }
      ctx.untracked_bytes += range_bytes(*own);
      ctx.untracked_areas += range_bytes(*own) > 0 ? 1 : 0;
      plan.ranges = std::move(*own);
      (void)tracker.track(a.start, a.end);
      continue;
    }
    // Only a written page can differ from what the base holds: discarding a page (munmap,
    // MADV_DONTNEED) counts as writing it. Written pages are read as they are now; a discarded
    // one reads as zeros and is dropped like any zero page. (No scan for present pages here:
    // walking every page table entry twice would double the pause.)
    PageRanges area{{a.start, a.end}};
    plan.ranges = union_ranges(**written, intersect_ranges(base.must_store, area));
    inherit(base, subtract_ranges(area, plan.ranges), a, parent_of, ctx);
  }
  return {};
}

Status precopy_pages(pid_t pid, CheckpointBase& base, image::ImageWriter& writer,
                     const std::string& image_id, const std::string& path, bool compare,
                     uint64_t* pages, std::string* compared) {
  WriteTracker& tracker = *base.tracker;
  VOS_TRY(tracker.reopen(), "tracking writes");
  CaptureContext live;  // the layout as it is now; the freeze reads it again
  live.pid = pid;
  VOS_TRY(plan_memory(live), "pre-copy of process {}", pid);
  // Every area is protected before any is read: a page written after its protection is copied
  // again during the freeze, whatever it held when it was read here.
  std::vector<bool> tracked(live.img.areas.size(), false);
  for (size_t idx = 0; idx < live.img.areas.size(); ++idx) {
    const auto& a = live.img.areas[idx];
    if (live.area_plans[idx].trackable) {
      auto written = tracker.take_written(a.start, a.end);  // re-protects if tracked already
      if (written && *written) {
        tracked[idx] = true;
      } else if (auto st = tracker.track(a.start, a.end); st) {
        tracked[idx] = true;
      } else if (base.untracked_why.empty()) {
        base.untracked_why = st.error().describe();
      }
    }
  }
  // Reference image k is this image's base image k + 1 (0 is the image being written).
  std::unique_ptr<PageReference> reference;
  std::vector<BaseImage> reference_images;
  if (compare && base.reference) {
    reference = std::move(base.reference);
    reference_images = base.images;
  }
  base.forget();
  base.images = {{path, image_id, 0}};
  base.images.insert(base.images.end(), reference_images.begin(), reference_images.end());
  WriteBehindSink sink(writer);
  for (size_t idx = 0; idx < live.img.areas.size(); ++idx) {
    if (!tracked[idx]) {
      continue;
    }
    CaptureContext one;
    one.pid = pid;
    one.img.areas = {live.img.areas[idx]};
    one.area_plans = {live.area_plans[idx]};
    auto& a = one.img.areas[0];
    auto own = tracker.private_pages(a.start, a.end);
    if (!own) {
      tracker.untrack(a.start, a.end);
      continue;
    }
    one.area_plans[0].explicit_ranges = true;
    one.area_plans[0].ranges = std::move(*own);
    one.reference = reference.get();
    auto st = write_pages(one, sink, pid, PagePass::kExplicitOnly);
    std::vector<PageHome> kept = reference ? reference->take_kept() : std::vector<PageHome>{};
    if (!st) {
      // Unmapped or protected meanwhile: the freeze stores it in full. Copies already written
      // stay in the file, unreferenced.
      tracker.untrack(a.start, a.end);
      continue;
    }
    for (const auto& r : a.pages) {
      base.pages.push_back({r.vaddr, r.npages, r.offset, 0});
    }
    for (const auto& h : kept) {
      base.pages.push_back({h.vaddr, h.npages, h.offset, h.image + 1});
    }
    *pages += one.img.pages_stored;
  }
  VOS_TRY(sink.finish(), "writing the pre-copied pages");
  if (reference && compared != nullptr) {
    *compared = fmt::format("{} of {} pages unchanged", reference->kept_pages(),
                            reference->compared_pages());
  }
  std::sort(base.pages.begin(), base.pages.end(),
            [](const PageHome& x, const PageHome& y) { return x.vaddr < y.vaddr; });
  return {};
}

namespace {

// Where every stored page of `img` lives, sorted by address (run.image indexes [img, parents]).
std::vector<PageHome> homes_of(const image::ProcessImage& img) {
  std::vector<PageHome> pages;
  for (const auto& a : img.areas) {
    for (const auto& r : a.pages) {
      pages.push_back({r.vaddr, r.npages, r.offset, r.image});
    }
  }
  std::sort(pages.begin(), pages.end(),
            [](const PageHome& x, const PageHome& y) { return x.vaddr < y.vaddr; });
  return pages;
}

}  // namespace

void base_from_restored(CheckpointBase& base, const image::ProcessImage& img,
                        std::vector<BaseImage> images, WriteTracker tracker) {
  base.images = std::move(images);
  base.pages = homes_of(img);
  base.must_store.clear();
  base.tracker.emplace(std::move(tracker));
  base.keep_tracking = true;
}

void base_for_comparison(CheckpointBase& base, const image::ProcessImage& img,
                         std::vector<BaseImage> images,
                         std::vector<PageReference::Source> sources) {
  base.forget();
  base.images = std::move(images);
  base.reference = std::make_unique<PageReference>(homes_of(img), std::move(sources));
  base.tracker.reset();
  base.keep_tracking = true;
}

void record_base(CheckpointBase& base, const CaptureContext& ctx, const std::string& path,
                 uint64_t size) {
  record_base(base, ctx.img, path, size);
}

void record_base(CheckpointBase& base, const image::ProcessImage& img, const std::string& path,
                 uint64_t size) {
  std::vector<BaseImage> images{{path, img.image_id, size}};
  for (const auto& p : img.parents) {  // (pre-copied pages are the new image's own)
    auto it = std::find_if(base.images.begin(), base.images.end(),
                           [&](const BaseImage& b) { return b.image_id == p.image_id; });
    images.push_back(it != base.images.end() ? *it : BaseImage{p.path, p.image_id, 0});
  }
  base.images = std::move(images);
  base.pages = homes_of(img);
  base.must_store.clear();
  base.reference.reset();  // numbered for the images before this one
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
