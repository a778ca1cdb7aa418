// Host side (keeper).
#include "capture/precopy_round.h"

#include <algorithm>

#include "capture/page_homes.h"
#include "capture/page_writer.h"
#include "capture/write_behind_sink.h"

namespace vos::capture {

namespace {

constexpr uint64_t kPage = 4096;

// Copies `ranges` of `area` into `sink`; the runs stored, as homes in image `self`.
Status copy_ranges(pid_t pid, const image::MemoryArea& area, const AreaPlan& plan,
                   PageRanges ranges, PageSink& sink, uint32_t self, std::vector<PageHome>& homes,
                   PrecopyRound& round) {
  CaptureContext one;
  one.pid = pid;
  one.img.areas = {area};
  one.area_plans = {plan};
  one.area_plans[0].explicit_ranges = true;
  round.pages_copied += range_bytes(ranges) / kPage;
  one.area_plans[0].ranges = std::move(ranges);
  VOS_TRY(write_pages(one, sink, pid, PagePass::kExplicitOnly), "pre-copy round");
  for (const auto& r : one.img.areas[0].pages) {
    homes.push_back({r.vaddr, r.npages, r.offset, self});
  }
  round.pages_stored += one.img.pages_stored;
  return {};
}

}  // namespace

Result<PrecopyRound> precopy_written_pages(pid_t pid, CheckpointBase& base,
                                           image::ImageWriter& writer, const std::string& image_id,
                                           const std::string& path) {
  WriteTracker& tracker = *base.tracker;
  VOS_TRY(tracker.reopen(), "tracking writes");
  base.follow_moves(false);  // made during the pre-copy
  CaptureContext live;       // the layout as it is now; the freeze reads it again
  live.pid = pid;
  VOS_TRY(plan_memory(live), "pre-copy round of process {}", pid);
  auto self_at = std::find_if(base.images.begin(), base.images.end(),
                              [&](const BaseImage& b) { return b.image_id == image_id; });
  auto self = static_cast<uint32_t>(self_at - base.images.begin());
  if (self_at == base.images.end()) {
    base.images.push_back({path, image_id, 0});  // never a parent: inherit() knows its own id
  }
  WriteBehindSink sink(writer);
  PrecopyRound round;
  PageRanges gone;
  std::vector<PageHome> fresh;
  for (size_t idx = 0; idx < live.img.areas.size(); ++idx) {
    const image::MemoryArea& a = live.img.areas[idx];
    const AreaPlan& plan = live.area_plans[idx];
    if (!plan.trackable) {
      continue;
    }
    PageRanges area{{a.start, a.end}};
    // Each area is protected again before it is read: a page written after its copy is
    // reported by the next round or the freeze.
    auto written = tracker.take_written(a.start, a.end);
    if (written && *written) {
      if ((*written)->empty()) {
        continue;
      }
      gone = union_ranges(gone, **written);
      if (!copy_ranges(pid, a, plan, std::move(**written), sink, self, fresh, round)) {
        // Unmapped or changed meanwhile; the runs already written stay unreferenced.
        base.must_store = union_ranges(base.must_store, area);
      }
      continue;
    }
    // The scan failed, or the area is not (entirely) tracked: it may still have protected a
    // part of it before stopping, so nothing the tracker says about that part can be trusted.
    // Tracked from now on and copied whole, or stored whole at the freeze.
    gone = union_ranges(gone, area);
    round.untracked_bytes += a.end - a.start;
    round.untracked_areas += 1;
    bool copied = false;
    if (written && tracker.track(a.start, a.end)) {
      auto own = tracker.private_pages(a.start, a.end);
      copied = own && copy_ranges(pid, a, plan, std::move(*own), sink, self, fresh, round);
    }
    if (!copied) {
      base.must_store = union_ranges(base.must_store, area);
    }
  }
  VOS_TRY(sink.finish(), "writing the pre-copy round's pages");
  base.pages = replace_homes(base.pages, gone, std::move(fresh));
  return round;
}

}  // namespace vos::capture
