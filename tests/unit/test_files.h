// Whole-file helpers for the unit tests that damage image files on purpose.
#pragma once

#include <fstream>
#include <iterator>
#include <string>

namespace vos::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace vos::testing
