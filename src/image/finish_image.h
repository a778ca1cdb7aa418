// Host side. The last steps of writing any image: blobs and metadata sections, then commit.
#pragma once

#include <string>

#include "base/result.h"
#include "image/image_writer.h"
#include "image/process_model.h"

namespace vos::image {

// Appends the blobs and meta sections (after the pages) and commits the image.
Status finish_image(ImageWriter& writer, const std::string& blobs, const ProcessImage& proc);

}  // namespace vos::image
