// Host side (CLI).
#include "cli/image_names.h"

#include <ctime>
#include <filesystem>
#include <regex>

namespace vos::cli {

namespace {

std::filesystem::path base_dir(const std::string& dir) {
  return std::filesystem::absolute(dir.empty() ? "." : dir);
}

}  // namespace

std::string new_image_path(const std::string& dir, const std::string& name) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  auto base = base_dir(dir);
  for (int n = 0;; ++n) {
    auto p = base / fmt::format("{}-{}-{:03}.vos", name, stamp, n);
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) {
      return p.lexically_normal().string();
    }
  }
}

Result<std::string> latest_image(const std::string& dir, const std::string& name) {
  auto base = base_dir(dir);
  // NAME-YYYYMMDD-HHMMSS[-N].vos; the key puts an unnumbered one first within its second.
  std::regex pattern("-(\\d{8}-\\d{6})(?:-(\\d+))?\\.vos");
  std::string best, best_key;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(base, ec)) {
    std::string file = e.path().filename().string();
    if (file.rfind(name, 0) != 0) {
      continue;
    }
    std::smatch m;
    std::string rest = file.substr(name.size());
    if (!std::regex_match(rest, m, pattern)) {
      continue;
    }
    std::string key = m[1].str() + fmt::format("-{:09}", m[2].matched ? std::stoll(m[2]) + 1 : 0);
    if (key > best_key) {
      best_key = key;
      best = e.path().lexically_normal().string();
    }
  }
  if (ec) {
    return Error(ec.value(), fmt::format("listing {}", base.string()));
  }
  if (best.empty()) {
    return user_error("no image of '{}' in {} (images are named {}-YYYYMMDD-HHMMSS-NNN.vos)", name,
                      base.string(), name);
  }
  return best;
}

}  // namespace vos::cli
