// The screen model of a program's vos pty: what render() writes redraws the same screen and
// modes, and skipping runs of plain lines (the fast path for `cat` of a large file) leaves
// exactly the screen that feeding every byte does.
#include "console/screen_model.h"

#include <gtest/gtest.h>

#include <string>

#include "console/frames.h"

namespace vos::console {
namespace {

void expect_same_screen(const ScreenModel& a, const ScreenModel& b) {
  ASSERT_EQ(a.rows(), b.rows());
  for (int r = 0; r < a.rows(); ++r) {
    EXPECT_EQ(a.row_text(r), b.row_text(r)) << "row " << r;
  }
  EXPECT_EQ(a.alt_screen(), b.alt_screen());
  EXPECT_EQ(a.render(), b.render());
}

std::string many_lines(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i % 7 == 0) {
      s += "\x1b[3" + std::to_string(i % 8) + "m";
    }
    s += "line " + std::to_string(i) + " some text\t| ünïcode\r\n";
  }
  return s + "\x1b[1mlast, no newline";
}

TEST(ScreenModelTest, RenderRedrawsScreenCursorPenAndModes) {
  ScreenModel a(24, 80);
  a.feed("hello\r\n\x1b[31mred\x1b[0m plain\r\n\x1b[5;10Hat 5,10");
  a.feed("\x1b[?1h\x1b=\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b[4;1m");
  a.feed("\x1b[?1049h\x1b[Halt screen\x1b[3;3H\xe2\x94\x80wide\xe4\xb8\xad");
  ScreenModel b(24, 80);
  b.feed(a.render());
  expect_same_screen(a, b);
  EXPECT_TRUE(b.alt_screen());
  EXPECT_TRUE(b.modes().cursor_keys_app);
  EXPECT_TRUE(b.modes().keypad_app);
  EXPECT_TRUE(b.modes().bracketed_paste);
  EXPECT_EQ(b.modes().mouse, 1000);
  EXPECT_TRUE(b.modes().mouse_sgr);
  EXPECT_EQ(b.row_text(0), "alt screen");
}

TEST(ScreenModelTest, ModesSplitAcrossFeedsAreSeen) {
  ScreenModel a(24, 80);
  a.feed("\x1b[?");
  a.feed("20");
  a.feed("04h\x1b");
  a.feed("=");
  EXPECT_TRUE(a.modes().bracketed_paste);
  EXPECT_TRUE(a.modes().keypad_app);
  a.feed("\x1b[?2004l\x1b>");
  EXPECT_FALSE(a.modes().bracketed_paste);
  EXPECT_FALSE(a.modes().keypad_app);
}

TEST(ScreenModelTest, SkippingPlainLinesLeavesTheSameScreen) {
  std::string text = "\x1b[2J\x1b[H" + many_lines(5000);
  ScreenModel fast(24, 80), slow(24, 80);
  fast.feed(text);  // one chunk: most of it skipped
  for (size_t i = 0; i < text.size(); i += 7) {
    slow.feed(std::string_view(text).substr(i, 7));  // too short to skip anything
  }
  EXPECT_GT(fast.bytes_skipped(), text.size() / 2);
  EXPECT_EQ(slow.bytes_skipped(), 0u);
  expect_same_screen(fast, slow);
}

TEST(ScreenModelTest, NothingIsSkippedInsideAScrollRegion) {
  std::string text = "\x1b[3;10r\x1b[5;1H" + many_lines(2000);
  ScreenModel fast(24, 80), slow(24, 80);
  fast.feed(text);
  for (size_t i = 0; i < text.size(); i += 5) {
    slow.feed(std::string_view(text).substr(i, 5));
  }
  EXPECT_EQ(fast.bytes_skipped(), 0u);
  expect_same_screen(fast, slow);
}

TEST(ScreenModelTest, AControlSequenceEndsTheRunThatMaySkip) {
  // A cursor move in the middle: what comes before it may go, what it moves must stay.
  std::string text = many_lines(300) + "\x1b[2;5HXY\x1b[24;1H" + many_lines(10);
  ScreenModel fast(24, 80), slow(24, 80);
  fast.feed(text);
  for (size_t i = 0; i < text.size(); i += 3) {
    slow.feed(std::string_view(text).substr(i, 3));
  }
  expect_same_screen(fast, slow);
}

TEST(ConsoleFramesTest, FramesComeOutWholeAndInOrder) {
  std::string wire;
  append_frame(wire, Frame::kInput, "ls\r");
  append_frame(wire, Frame::kResize, "40 120");
  append_frame(wire, Frame::kOutput, std::string(100000, 'x'));
  std::string buf;
  Frame type{};
  std::string payload;
  std::vector<std::pair<Frame, size_t>> got;
  for (size_t i = 0; i < wire.size(); i += 4096) {
    buf += wire.substr(i, 4096);
    while (take_frame(buf, type, payload)) {
      got.emplace_back(type, payload.size());
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(Frame::kInput, size_t{3}));
  EXPECT_EQ(got[1], std::make_pair(Frame::kResize, size_t{6}));
  EXPECT_EQ(got[2], std::make_pair(Frame::kOutput, size_t{100000}));
  EXPECT_TRUE(buf.empty());
}

}  // namespace
}  // namespace vos::console
