// Host side (keeper). What the first incremental checkpoint of a restored program builds on: the
// image it was restored from, and that image's parents.
#include <sys/stat.h>

#include <filesystem>

#include "base/mapped_file.h"
#include "capture/tree_freeze.h"
#include "keeper/keeper_state.h"

namespace vos::keeper {

namespace {

// The restored image and its parents, in the order page runs number them.
std::vector<capture::BaseImage> restored_chain(const restore::LoadedImage& img) {
  std::vector<capture::BaseImage> images;
  auto add = [&](const image::ImageReader& r, const std::string& id) {
    std::error_code ec;
    std::string path = std::filesystem::absolute(r.path(), ec).lexically_normal().string();
    struct stat st {};
    uint64_t size = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    images.push_back({path, id, size});
  };
  add(img.reader, img.proc.image_id);
  for (size_t i = 0; i < img.parents.size(); ++i) {
    add(img.parents[i].reader, img.proc.parents[i].image_id);
  }
  return images;
}

}  // namespace

void Keeper::base_on_restored_process(const restore::LoadedImage& img, restore::FinishedRestore& f,
                                      bool tree) {
  capture::CheckpointBase& b = tree ? tree_bases[f.pid] : base;
  if (f.tracker) {
    capture::base_from_restored(b, *f.proc, restored_chain(img), std::move(*f.tracker));
  } else if (f.proc->writes_tracked && !tree) {
    // (A tree's checkpoint builds only on tracked writes: its lazily restored processes get a
    // full image next.)
    std::vector<capture::PageReference::Source> sources;
    auto add = [&](const restore::PageSource& pages) {
      auto m = MappedFile::map_readonly(pages.fd);
      if (m) {
        sources.push_back({std::move(*m), pages.base});
      }
    };
    add(img.pages);
    for (const auto& p : img.parents) {
      add(p.pages);
    }
    if (sources.size() == img.parents.size() + 1) {
      capture::base_for_comparison(b, *f.proc, restored_chain(img), std::move(sources));
    }
  }
  b.untracked_why = f.untracked_why;
  if (tree) {
    auto st = capture::read_tree_stat(f.pid);
    if (!b.has_image() || !st) {
      tree_bases.erase(f.pid);
      return;
    }
    b.process_start = st->start_time;  // the checkpoint's check that it is still this process
  }
}

}  // namespace vos::keeper
