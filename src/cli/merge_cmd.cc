// Host side (CLI): `vos merge`.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "restore/merge_image.h"

namespace vos::cli {

int cmd_merge(const std::string& in, const std::string& out, bool json) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec)) {
    std::fprintf(stderr, "vos merge: %s exists; give a new file\n", out.c_str());
    return 1;
  }
  auto stats = restore::merge_image(in, out);
  if (!stats) {
    std::fprintf(stderr, "vos merge: %s\n", stats.error().describe().c_str());
    return 1;
  }
  if (json) {
    nlohmann::json j = {{"image", out},
                        {"from", in},
                        {"pages", stats->pages},
                        {"pages_copied", stats->pages_copied},
                        {"parents", stats->parents},
                        {"bytes", stats->bytes}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", out.c_str());
  }
  return 0;
}

}  // namespace vos::cli
