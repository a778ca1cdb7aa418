// Host side (keeper).
#include "console/screen_model.h"

#include <vterm.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

namespace vos::console {

struct ModelCallbacks {
  static int termprop(VTermProp prop, VTermValue* val, void* user) {
    auto* m = static_cast<ScreenModel*>(user);
    if (prop == VTERM_PROP_ALTSCREEN) {
      m->alt_screen_ = val->boolean != 0;
    } else if (prop == VTERM_PROP_CURSORVISIBLE) {
      m->cursor_visible_ = val->boolean != 0;
    }
    return 1;
  }
  static const VTermScreenCallbacks& table() {
    static const VTermScreenCallbacks cb = [] {
      VTermScreenCallbacks c{};
      c.settermprop = termprop;
      return c;
    }();
    return cb;
  }
};

namespace {

// libvterm answers the program's queries (device attributes, cursor position) on its output;
// the attached terminal answers them itself, so these are dropped.
void drop_output(const char*, size_t, void*) {}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

void append_color(std::string& out, const VTermColor& c, bool fg) {
  if (fg ? VTERM_COLOR_IS_DEFAULT_FG(&c) : VTERM_COLOR_IS_DEFAULT_BG(&c)) {
    out += fg ? ";39" : ";49";
  } else if (VTERM_COLOR_IS_INDEXED(&c)) {
    int i = c.indexed.idx;
    if (i < 8) {
      out += ";" + std::to_string((fg ? 30 : 40) + i);
    } else if (i < 16) {
      out += ";" + std::to_string((fg ? 90 : 100) + i - 8);
    } else {
      out += (fg ? ";38;5;" : ";48;5;") + std::to_string(i);
    }
  } else {
    out += (fg ? ";38;2;" : ";48;2;") + std::to_string(c.rgb.red) + ";" +
           std::to_string(c.rgb.green) + ";" + std::to_string(c.rgb.blue);
  }
}

struct Pen {
  VTermScreenCellAttrs attrs{};
  VTermColor fg{}, bg{};
};

bool same_color(const VTermColor& a, const VTermColor& b) {
  if ((a.type & VTERM_COLOR_DEFAULT_MASK) != 0 || (b.type & VTERM_COLOR_DEFAULT_MASK) != 0) {
    return (a.type & VTERM_COLOR_DEFAULT_MASK) == (b.type & VTERM_COLOR_DEFAULT_MASK);
  }
  return a.type == b.type &&
         (VTERM_COLOR_IS_INDEXED(&a)
              ? a.indexed.idx == b.indexed.idx
              : (a.rgb.red == b.rgb.red && a.rgb.green == b.rgb.green && a.rgb.blue == b.rgb.blue));
}

bool same_pen(const Pen& a, const Pen& b) {
  return a.attrs.bold == b.attrs.bold && a.attrs.underline == b.attrs.underline &&
         a.attrs.italic == b.attrs.italic && a.attrs.blink == b.attrs.blink &&
         a.attrs.reverse == b.attrs.reverse && a.attrs.strike == b.attrs.strike &&
         same_color(a.fg, b.fg) && same_color(a.bg, b.bg);
}

// One SGR sequence setting the whole pen (reset first: no state of the receiver's matters).
std::string sgr(const Pen& p) {
  std::string s = "\x1b[0";
  if (p.attrs.bold) {
    s += ";1";
  }
  if (p.attrs.italic) {
    s += ";3";
  }
  if (p.attrs.underline == VTERM_UNDERLINE_SINGLE) {
    s += ";4";
  } else if (p.attrs.underline == VTERM_UNDERLINE_DOUBLE) {
    s += ";21";
  } else if (p.attrs.underline == VTERM_UNDERLINE_CURLY) {
    s += ";4:3";
  }
  if (p.attrs.blink) {
    s += ";5";
  }
  if (p.attrs.reverse) {
    s += ";7";
  }
  if (p.attrs.strike) {
    s += ";9";
  }
  append_color(s, p.fg, true);
  append_color(s, p.bg, false);
  return s + "m";
}

// What libvterm puts in the cell after a wide character.
constexpr uint32_t kWideRest = 0xffffffff;

// A byte that may appear in a run of plain lines: printable text (UTF-8 included), CR, LF, tab,
// backspace, bell. Everything else may change what later bytes mean.
bool plain_byte(unsigned char c) {
  return c >= 0x20 || c == '\r' || c == '\n' || c == '\t' || c == '\b' || c == '\a';
}

}  // namespace

ScreenModel::ScreenModel(int rows, int cols) : rows_(std::max(rows, 1)), cols_(std::max(cols, 1)) {
  vt_ = vterm_new(rows_, cols_);
  vterm_set_utf8(vt_, 1);
  vterm_output_set_callback(vt_, drop_output, nullptr);
  screen_ = vterm_obtain_screen(vt_);
  vterm_screen_set_callbacks(screen_, &ModelCallbacks::table(), this);
  vterm_screen_enable_altscreen(screen_, 1);
  vterm_screen_reset(screen_, 1);
}

ScreenModel::~ScreenModel() {
  vterm_free(vt_);
}

void ScreenModel::resize(int rows, int cols) {
  rows_ = std::max(rows, 1);
  cols_ = std::max(cols, 1);
  vterm_set_size(vt_, rows_, cols_);
}

void ScreenModel::feed_vterm(std::string_view bytes) {
  if (!bytes.empty()) {
    vterm_input_write(vt_, bytes.data(), bytes.size());
  }
}

void ScreenModel::scan_modes(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    if (pending_escape_.empty()) {
      const void* esc = std::memchr(bytes.data() + i, 0x1b, bytes.size() - i);
      if (esc == nullptr) {
        return;
      }
      i = static_cast<size_t>(static_cast<const char*>(esc) - bytes.data());
    }
    pending_escape_ += bytes[i++];
    const std::string& e = pending_escape_;
    if (e.size() == 1) {
      continue;
    }
    if (e[1] != '[') {
      if (e[1] == '=') {
        modes_.keypad_app = true;
      } else if (e[1] == '>') {
        modes_.keypad_app = false;
      } else if (e[1] == 'c') {
        modes_ = {};
      }
      pending_escape_.clear();
      continue;
    }
    unsigned char last = static_cast<unsigned char>(e.back());
    if (e.size() == 2 || last < 0x40 || last > 0x7e) {
      if (e.size() > 64) {
        pending_escape_.clear();  // not a sequence this scan understands
      }
      continue;
    }
    // A complete CSI: ESC [ [?] params final.
    bool priv = e.size() > 2 && e[2] == '?';
    std::vector<int> params;
    for (size_t p = priv ? 3 : 2; p < e.size() - 1;) {
      int v = 0;
      auto [next, ec] = std::from_chars(e.data() + p, e.data() + e.size() - 1, v);
      params.push_back(ec == std::errc() ? v : 0);
      p = static_cast<size_t>(next - e.data());
      if (p < e.size() - 1 && e[p] != ';') {
        break;  // intermediates or sub-parameters: not one of ours
      }
      ++p;
    }
    if (priv && (last == 'h' || last == 'l')) {
      bool on = last == 'h';
      for (int m : params) {
        if (m == 1) {
          modes_.cursor_keys_app = on;
        } else if (m == 2004) {
          modes_.bracketed_paste = on;
        } else if (m == 1000 || m == 1002 || m == 1003) {
          modes_.mouse = on ? m : 0;
        } else if (m == 1006) {
          modes_.mouse_sgr = on;
        }
      }
    } else if (!priv && last == 'r') {
      int top = !params.empty() && params[0] > 0 ? params[0] : 1;
      int bottom = params.size() > 1 && params[1] > 0 ? params[1] : rows_;
      bool whole = top <= 1 && bottom >= rows_;
      modes_.margin_top = whole ? 0 : top;
      modes_.margin_bottom = whole ? 0 : bottom;
    }
    pending_escape_.clear();
  }
}

// `cat` of a large file is thousands of screens of plain lines, of which only the last stays
// visible; libvterm scrolls at about 15-40 MB/s, slower than a terminal is written. When a chunk
// holds a run of plain lines (text, CR, LF, colors) with more than a screen after it, the
// cursor is on the last row at its end and everything before it has scrolled off: the run's
// only lasting effect is the pen it leaves, so only its SGR sequences are fed, then the cursor is
// put where the run left it (the last row, first column: the run ends with CR LF).
bool ScreenModel::skip_plain_lines(std::string_view& bytes) {
  if (modes_.margin_top != 0 || !pending_escape_.empty() ||
      bytes.size() < static_cast<size_t>(rows_) * 4) {
    return false;
  }
  size_t first_lf = bytes.find('\n');
  if (first_lf == std::string_view::npos) {
    return false;
  }
  // From after the first LF (an escape sequence begun in the previous chunk ends before it),
  // find the run of plain lines and where the last `rows_` line feeds begin.
  size_t start = first_lf + 1;
  std::vector<size_t> lf;  // positions of the run's line feeds
  std::string pen;
  size_t i = start;
  while (i < bytes.size()) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c == 0x1b) {
      // Only SGR (ESC [ digits ; : m) may appear in the run.
      size_t j = i + 1;
      if (j >= bytes.size() || bytes[j] != '[') {
        break;
      }
      ++j;
      while (j < bytes.size() &&
             ((bytes[j] >= '0' && bytes[j] <= '9') || bytes[j] == ';' || bytes[j] == ':')) {
        ++j;
      }
      if (j >= bytes.size() || bytes[j] != 'm') {
        break;
      }
      pen.append(bytes.substr(i, j + 1 - i));
      i = j + 1;
      continue;
    }
    // U+0080-U+009F are C1 controls to libvterm (U+009B is CSI): not plain.
    if (!plain_byte(c) ||
        (c == 0xc2 && i + 1 < bytes.size() && static_cast<unsigned char>(bytes[i + 1]) < 0xa0)) {
      break;
    }
    if (c == '\n') {
      lf.push_back(i);
    }
    ++i;
  }
  // The run must move the cursor to the last row (rows_ line feeds) and the rest of the chunk
  // must push all of it off the screen (rows_ more).
  size_t rows = static_cast<size_t>(rows_);
  if (lf.size() < 2 * rows) {
    return false;
  }
  // Cut after a CR LF, at least rows_ line feeds before the end of the run.
  for (size_t k = lf.size() - rows; k >= rows; --k) {
    size_t at = lf[k - 1];
    if (at > start && bytes[at - 1] == '\r') {
      // Remaining line feeds after the cut, within the run, are lf.size() - k >= rows.
      feed_vterm(bytes.substr(0, start));
      // The SGR sequences up to the cut only (those after it are fed with the rest).
      std::string pen_upto;
      for (size_t p = start; p < at;) {
        if (bytes[p] == 0x1b) {
          size_t m = bytes.find('m', p);
          pen_upto.append(bytes.substr(p, m + 1 - p));
          p = m + 1;
        } else {
          ++p;
        }
      }
      feed_vterm(pen_upto);
      feed_vterm("\x1b[" + std::to_string(rows_) + ";1H");
      skipped_ += at + 1 - start;
      bytes.remove_prefix(at + 1);
      return true;
    }
  }
  return false;
}

namespace {

// How many bytes at the end of `bytes` begin a UTF-8 character that is not complete yet.
size_t incomplete_utf8_tail(std::string_view bytes) {
  for (size_t back = 1; back <= 3 && back <= bytes.size(); ++back) {
    auto c = static_cast<unsigned char>(bytes[bytes.size() - back]);
    if ((c & 0xc0) == 0x80) {
      continue;  // a continuation byte: the lead is further back
    }
    size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace

void ScreenModel::feed(std::string_view bytes) {
  scan_modes(bytes);
  // libvterm 0.1 decodes each write on its own: a character split between two reads of the pty
  // would become two replacement characters. Its start waits for the rest.
  std::string joined;
  if (!utf8_held_.empty()) {
    joined = std::move(utf8_held_) + std::string(bytes);
    utf8_held_.clear();
    bytes = joined;
  }
  size_t tail = incomplete_utf8_tail(bytes);
  std::string held(bytes.substr(bytes.size() - tail));
  bytes.remove_suffix(tail);
  skip_plain_lines(bytes);
  feed_vterm(bytes);
  utf8_held_ = std::move(held);
}

std::string ScreenModel::row_text(int row) const {
  std::string out;
  for (int col = 0; col < cols_; ++col) {
    VTermScreenCell cell{};
    if (!vterm_screen_get_cell(screen_, {row, col}, &cell)) {
      break;
    }
    if (cell.chars[0] == kWideRest) {
      continue;  // the second half of a wide character
    }
    if (cell.chars[0] == 0) {
      out += ' ';
      continue;
    }
    for (int k = 0; k < VTERM_MAX_CHARS_PER_CELL && cell.chars[k] != 0; ++k) {
      append_utf8(out, cell.chars[k]);
    }
  }
  out.erase(out.find_last_not_of(' ') + 1);
  return out;
}

std::string ScreenModel::render() const {
  std::string out = "\x1b[0m";
  out += alt_screen_ ? "\x1b[?1049h" : "\x1b[?1049l";
  out += "\x1b[r\x1b[H\x1b[2J";
  Pen blank;
  blank.fg.type = VTERM_COLOR_DEFAULT_FG;
  blank.bg.type = VTERM_COLOR_DEFAULT_BG;
  Pen pen = blank;
  VTermState* state = vterm_obtain_state(vt_);
  for (int row = 0; row < rows_; ++row) {
    bool placed = false;
    for (int col = 0; col < cols_; ++col) {
      VTermScreenCell cell{};
      if (!vterm_screen_get_cell(screen_, {row, col}, &cell) || cell.width == 0 ||
          cell.chars[0] == kWideRest) {
        continue;
      }
      Pen here{cell.attrs, cell.fg, cell.bg};
      if (cell.chars[0] == 0 && same_pen(here, blank)) {
        placed = false;  // blank after the clear; the next drawn cell is placed explicitly
        continue;
      }
      if (!placed) {
        out += "\x1b[" + std::to_string(row + 1) + ";" + std::to_string(col + 1) + "H";
        placed = true;
      }
      if (!same_pen(here, pen)) {
        out += sgr(here);
        pen = here;
      }
      if (cell.chars[0] == 0) {
        out += ' ';
      } else {
        for (int k = 0; k < VTERM_MAX_CHARS_PER_CELL && cell.chars[k] != 0; ++k) {
          append_utf8(out, cell.chars[k]);
        }
      }
      col += cell.width - 1;
    }
  }
  // The program's pen, margins, modes and cursor, as it left them.
  Pen now;
  VTermValue v{};
  vterm_state_get_penattr(state, VTERM_ATTR_BOLD, &v);
  now.attrs.bold = v.boolean != 0;
  vterm_state_get_penattr(state, VTERM_ATTR_UNDERLINE, &v);
  now.attrs.underline = static_cast<unsigned>(v.number) & 3;
  vterm_state_get_penattr(state, VTERM_ATTR_ITALIC, &v);
  now.attrs.italic = v.boolean != 0;
  vterm_state_get_penattr(state, VTERM_ATTR_BLINK, &v);
  now.attrs.blink = v.boolean != 0;
  vterm_state_get_penattr(state, VTERM_ATTR_REVERSE, &v);
  now.attrs.reverse = v.boolean != 0;
  vterm_state_get_penattr(state, VTERM_ATTR_STRIKE, &v);
  now.attrs.strike = v.boolean != 0;
  vterm_state_get_penattr(state, VTERM_ATTR_FOREGROUND, &v);
  now.fg = v.color;
  vterm_state_get_penattr(state, VTERM_ATTR_BACKGROUND, &v);
  now.bg = v.color;
  if (modes_.margin_top != 0) {
    out += "\x1b[" + std::to_string(modes_.margin_top) + ";" +
           std::to_string(modes_.margin_bottom) + "r";
  }
  out += modes_.cursor_keys_app ? "\x1b[?1h" : "\x1b[?1l";
  out += modes_.keypad_app ? "\x1b=" : "\x1b>";
  out += modes_.bracketed_paste ? "\x1b[?2004h" : "\x1b[?2004l";
  out += "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l";
  if (modes_.mouse != 0) {
    out += "\x1b[?" + std::to_string(modes_.mouse) + "h";
  }
  if (modes_.mouse_sgr) {
    out += "\x1b[?1006h";
  }
  VTermPos cursor{};
  vterm_state_get_cursorpos(state, &cursor);
  out += "\x1b[" + std::to_string(cursor.row + 1) + ";" + std::to_string(cursor.col + 1) + "H";
  out += sgr(now);
  out += cursor_visible_ ? "\x1b[?25h" : "\x1b[?25l";
  return out;
}

}  // namespace vos::console
