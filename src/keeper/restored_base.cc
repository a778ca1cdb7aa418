// Host side (keeper). What the first incremental checkpoint of a restored program builds on: the
// image it was restored from, and that image's parents.
#include <sys/stat.h>

#include <filesystem>

#include "base/mapped_file.h"
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

void Keeper::base_on_restored_image(const restore::LoadedImage& img,
                                    capture::WriteTracker tracker) {
  capture::base_from_restored(base, img.proc, restored_chain(img), std::move(tracker));
}

void Keeper::compare_with_restored_image(const restore::LoadedImage& img) {
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
    capture::base_for_comparison(base, img.proc, restored_chain(img), std::move(sources));
  }
}

}  // namespace vos::keeper
