// Host side (keeper). What the program's terminal shows now, kept from everything the program
// wrote to it: a libvterm screen, plus the few terminal modes libvterm does not report (cursor
// keys, keypad, bracketed paste, mouse reporting, scroll margins), which a terminal attached
// later must be put in for typing to work as the program expects.
//
// The model is written back as bytes (render): what a terminal needs to show this screen, in
// these modes. Attaching sends that to the new terminal, and an image stores it: a restore
// feeds it to a fresh model, so the image holds no libvterm format of any version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct VTerm;
struct VTermScreen;

namespace vos::console {

// Modes the program set with escape sequences that libvterm parses but does not report.
struct TerminalModes {
  bool cursor_keys_app = false;  // DECCKM, ESC [ ? 1 h: arrows send ESC O A
  bool keypad_app = false;       // DECKPAM, ESC =
  bool bracketed_paste = false;  // ESC [ ? 2004 h
  int mouse = 0;                 // the last of 1000/1002/1003 set, 0 for none
  bool mouse_sgr = false;        // ESC [ ? 1006 h
  int margin_top = 0;            // DECSTBM, 1-based; 0: the whole screen
  int margin_bottom = 0;
};

class ScreenModel {
 public:
  ScreenModel(int rows, int cols);
  ~ScreenModel();
  ScreenModel(const ScreenModel&) = delete;
  ScreenModel& operator=(const ScreenModel&) = delete;

  // What the program wrote, in order (any split: an escape sequence may span two calls). A
  // long run of plain lines is not fed whole: only what stays on the screen is (see feed).
  void feed(std::string_view bytes);
  void resize(int rows, int cols);
  int rows() const { return rows_; }
  int cols() const { return cols_; }

  // Bytes that make a terminal of this size show this screen, cursor and pen, in these modes.
  std::string render() const;
  // The text of one row (UTF-8, trailing blanks dropped): for tests and `vos inspect`.
  std::string row_text(int row) const;
  bool alt_screen() const { return alt_screen_; }
  const TerminalModes& modes() const { return modes_; }
  uint64_t bytes_skipped() const { return skipped_; }

 private:
  void feed_vterm(std::string_view bytes);
  void scan_modes(std::string_view bytes);
  bool skip_plain_lines(std::string_view& bytes);
  friend struct ModelCallbacks;

  int rows_, cols_;
  VTerm* vt_ = nullptr;
  VTermScreen* screen_ = nullptr;
  bool alt_screen_ = false;
  bool cursor_visible_ = true;
  TerminalModes modes_;
  std::string pending_escape_;  // an escape sequence scan_modes has seen only the start of
  std::string utf8_held_;       // the start of a character whose rest has not come yet
  uint64_t skipped_ = 0;
};

}  // namespace vos::console
