// Host side (CLI). The progress of a long command, on stderr: one line rewritten in place on a
// terminal, or a line per report when asked for (--progress=always) on anything else.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace vos::cli {

class ProgressDisplay {
 public:
  enum class Mode { kAuto, kAlways, kNever };
  // "auto", "always" or "never" (what --progress accepts); nullopt for anything else.
  static std::optional<Mode> parse_mode(const std::string& text);

  // `label` starts every line, e.g. "vos checkpoint: NAME".
  ProgressDisplay(Mode mode, std::string label);
  // False if no update() can ever print (never, or auto with stderr not a terminal): then there
  // is no point in asking for progress reports.
  bool may_show() const { return mode_ == Mode::kAlways || (mode_ == Mode::kAuto && terminal_); }
  // `expected` 0: the total is not known.
  void update(uint64_t done, uint64_t expected);
  // The command ended: the terminal line goes away; elsewhere, if it succeeded, a last line says
  // what was done (a failure is for the caller to report).
  void finish(bool ok, uint64_t done);

 private:
  bool shows_now() const;
  void print(const std::string& text);
  double seconds() const;

  Mode mode_;
  std::string label_;
  bool terminal_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// "12 KiB", "412 MiB", "1.5 GiB".
std::string human_bytes(uint64_t bytes);

}  // namespace vos::cli
