// Host side (CLI).
#include "cli/progress_display.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace vos::cli {

namespace {
// On a terminal, "auto" shows nothing for commands shorter than this: no flash of a line.
constexpr double kAutoAfterSeconds = 0.5;
}  // namespace

std::optional<ProgressDisplay::Mode> ProgressDisplay::parse_mode(const std::string& text) {
  if (text == "auto") {
    return Mode::kAuto;
  }
  if (text == "always") {
    return Mode::kAlways;
  }
  if (text == "never") {
    return Mode::kNever;
  }
  return std::nullopt;
}

ProgressDisplay::ProgressDisplay(Mode mode, std::string label)
    : mode_(mode), label_(std::move(label)), terminal_(::isatty(STDERR_FILENO) == 1) {}

double ProgressDisplay::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

bool ProgressDisplay::shows_now() const {
  switch (mode_) {
    case Mode::kAlways:
      return true;
    case Mode::kAuto:
      return terminal_ && seconds() >= kAutoAfterSeconds;
    case Mode::kNever:
      return false;
  }
  return false;
}

void ProgressDisplay::print(const std::string& text) {
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
  shown_ = true;
}

void ProgressDisplay::update(uint64_t done, uint64_t expected) {
  if (!shows_now()) {
    return;
  }
  std::string text = fmt::format("{}: {} written", label_, human_bytes(done));
  if (expected > 0) {
    // The total is an estimate (and a pre-copy writes some pages twice): never "100%" early.
    uint64_t percent = std::min<uint64_t>(99, done * 100 / expected);
    text += fmt::format(" of ~{} ({}%)", human_bytes(expected), percent);
  }
  print(text + fmt::format(", {:.1f} s", seconds()));
}

void ProgressDisplay::finish(bool ok, uint64_t done) {
  if (terminal_) {
    if (shown_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
    }
    return;
  }
  if (ok && mode_ == Mode::kAlways) {
    print(fmt::format("{}: done, {} written in {:.1f} s", label_, human_bytes(done), seconds()));
  }
}

std::string human_bytes(uint64_t bytes) {
  constexpr double kMiB = 1 << 20;
  constexpr double kGiB = 1 << 30;
  if (bytes >= (1ull << 30)) {
    return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / kGiB);
  }
  if (bytes >= (1ull << 20)) {
    return fmt::format("{:.0f} MiB", static_cast<double>(bytes) / kMiB);
  }
  return fmt::format("{} KiB", (bytes + 1023) >> 10);
}

}  // namespace vos::cli
