// Host side (keeper). Incremental checkpoints: an image that stores only the pages written since
// the previous checkpoint of the same program and refers to its parents for the rest.
//
// The keeper keeps a CheckpointBase between checkpoints: where every page of the last image
// lives (in that image or in an image it refers to) and a WriteTracker armed at that image's
// freeze. At the next freeze, a tracked area's pages are: written since -> stored; private and
// not written -> inherited from wherever the base says they live; anything else -> a zero page
// or the file's page, exactly as in a full image. An area the tracker does not cover (mapped
// since, or untrackable) is stored in full; memory moved with mremap is followed (follow_moves).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capture/capture_context.h"
#include "capture/page_homes.h"
#include "capture/page_reference.h"
#include "capture/page_writer.h"
#include "capture/write_tracker.h"

namespace vos::capture {

struct BaseImage {
  std::string path;
  std::string image_id;
  uint64_t size = 0;  // file size when written: a changed file is not the same image
};

struct CheckpointBase {
  std::vector<BaseImage> images;  // [0] is the last image written; the rest are its parents
  std::vector<PageHome> pages;    // sorted by vaddr
  std::optional<WriteTracker> tracker;
  // Writes stay tracked between checkpoints only once --incremental was asked for; a pre-copy
  // alone stops tracking when its checkpoint is done, leaving the program as it was.
  bool keep_tracking = false;
  FrozenBuffer frozen;             // where written pages are copied while the program is stopped
  uint64_t last_stored_bytes = 0;  // of the last incremental image, to size `frozen`
  // Pages a pre-copy round protected again but could not copy (their area changed under it):
  // their writes are known to no one any more, so the freeze stores them as if written.
  PageRanges must_store;
  // Without a tracker since a restore (lazy): the restored image's pages (PageHome::image indexes
  // `images`), for the next incremental checkpoint to compare with.
  std::unique_ptr<PageReference> reference;
  // Why some memory could not be tracked (at a restore, or when a pre-copy began): those areas
  // are stored in full, and the checkpoint's note says why, so that a large image is explained.
  std::string untracked_why;
  // Trees: the process the base is of (/proc/PID/stat start time), not a later one with its pid.
  uint64_t process_start = 0;

  bool has_image() const { return !images.empty(); }
  // After a failure that lost written-page information: the next image is a full one.
  void forget() {
    images.clear();
    pages.clear();
    must_store.clear();
    reference.reset();
  }
  // Fails, naming the file, if an image the base refers to was removed or changed.
  Status check_images() const;
  // Follows the program's moves (mremap) since the last call: homes and must_store move with
  // the pages. A move made while a pre-copy read memory (`exact` false) may have been of memory
  // protected but not copied yet (its homes are missing), or the pre-copy may have read a new
  // mapping at its source after it: both its source and destination are stored in full at the
  // freeze. Between checkpoints (`exact`) the homes describe every page of the base.
  void follow_moves(bool exact);
};

// While frozen, after plan_memory: starts tracking every trackable area not tracked yet and
// re-protects the tracked ones, so that writes are counted from this freeze on. When `delta`,
// also turns the plan into an incremental one against `base`: stored ranges become explicit and
// unwritten pages become runs inherited from the base's images (ctx.img.parents); pages in
// `base.must_store` count as written.
Status sync_tracking(CaptureContext& ctx, CheckpointBase& base, bool delta);

// Pre-copy, while the program runs: starts tracking writes to its private memory, then copies
// that memory into the open pages section of `writer`. Afterwards `base` describes these copies
// as pages of the image being written (id `image_id`, at `path`), so that the freeze that
// follows is an incremental checkpoint against them that only copies what was written since.
// Memory that could not be copied (unmapped or protected meanwhile) is left untracked, and so
// is stored in full during the freeze.
// With `compare`, and base.reference set, a page equal to its copy in the reference is not
// copied: the image refers to the reference's copy (the reference's images become its parents).
// `compared` (may be null) gets "N of M pages unchanged" when pages were compared.
Status precopy_pages(pid_t pid, CheckpointBase& base, image::ImageWriter& writer,
                     const std::string& image_id, const std::string& path, bool compare,
                     uint64_t* pages, std::string* compared);

// After the image at `path` was committed: what the next incremental checkpoint builds on.
void record_base(CheckpointBase& base, const CaptureContext& ctx, const std::string& path,
                 uint64_t size);
void record_base(CheckpointBase& base, const image::ProcessImage& img, const std::string& path,
                 uint64_t size);

// After a restore from `img` (at `images[0]`, its parents after it, in order): the next
// incremental checkpoint builds on it, given a tracker armed before the program ran again.
void base_from_restored(CheckpointBase& base, const image::ProcessImage& img,
                        std::vector<BaseImage> images, WriteTracker tracker);
// The same without a tracker (writes since the restore are unknown): the next incremental
// checkpoint compares the program's pages with those of `img`, read through `sources` (one per
// image, parallel to `images`).
void base_for_comparison(CheckpointBase& base, const image::ProcessImage& img,
                         std::vector<BaseImage> images, std::vector<PageReference::Source> sources);

// Bytes the plan stores from explicit ranges (incremental), to decide how to read them.
uint64_t planned_bytes(const CaptureContext& ctx);

}  // namespace vos::capture
