// Host side. The last steps of writing any image: blobs and metadata sections, then commit.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "image/image_writer.h"
#include "image/process_model.h"

namespace vos::image {

// Appends the blobs and meta sections (after the pages) and commits the image. `more_blobs`
// follow `blobs` in the blobs section, in order (large file contents, kept apart at capture).
Status finish_image(ImageWriter& writer, const std::string& blobs, const ProcessImage& proc,
                    const std::vector<std::string_view>& more_blobs = {});

}  // namespace vos::image
