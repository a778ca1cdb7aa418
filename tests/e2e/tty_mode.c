// e2e case (runs under vos on a terminal, driven by cli/terminal.sh): the terminal's state that
// belongs to the program must be the program's again after a restore onto another terminal: the
// mode it set (raw input, no echo, its own interrupt character: what a full-screen program such
// as less or vim sets), its process group in the foreground (with "own-group": a job-control
// program that leads a group of its own and takes the terminal), and a SIGWINCH when the new
// terminal has another size, which it then reads. argv[2]: "own-group" or "shared-group".
#define _GNU_SOURCE  // before any libc header
#include <sys/ioctl.h>
#include <termios.h>

#include "e2e_common.h"

static volatile sig_atomic_t winches;

static void on_winch(int sig) {
  (void)sig;
  winches++;
}

static int same_mode(const struct termios* a, const struct termios* b) {
  return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
         a->c_lflag == b->c_lflag && memcmp(a->c_cc, b->c_cc, sizeof a->c_cc) == 0;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  int own_group = argc > 2 && strcmp(argv[2], "own-group") == 0;
  E2E_CHECK(isatty(0), "stdin is not a terminal");
  signal(SIGWINCH, on_winch);
  if (own_group) {
    signal(SIGTTOU, SIG_IGN);
    E2E_CHECK(setpgid(0, 0) == 0, "setpgid: %s", strerror(errno));
    E2E_CHECK(tcsetpgrp(0, getpid()) == 0, "tcsetpgrp: %s", strerror(errno));
  }
  struct termios mode;
  E2E_CHECK(tcgetattr(0, &mode) == 0, "tcgetattr: %s", strerror(errno));
  mode.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN);
  mode.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
  mode.c_cc[VMIN] = 1;
  mode.c_cc[VTIME] = 0;
  mode.c_cc[VINTR] = 0x07;  // ^G: no terminal has this by default
  E2E_CHECK(tcsetattr(0, TCSANOW, &mode) == 0, "tcsetattr: %s", strerror(errno));
  E2E_CHECK(tcgetattr(0, &mode) == 0, "tcgetattr: %s", strerror(errno));
  e2e_ready();
  if (e2e_sabotage()) {  // what a restore that left the terminal as it found it would show
    struct termios cooked = mode;
    cooked.c_lflag |= ECHO | ICANON;
    tcsetattr(0, TCSANOW, &cooked);
  }
  // The harness checkpoints, kills and restores us on a new terminal, then writes the new
  // terminal's size to <dir>/size.
  char path[4096];
  snprintf(path, sizeof path, "%s/size", e2e_dir);
  double give_up = e2e_now() + 30;
  FILE* f = NULL;
  while ((f = fopen(path, "r")) == NULL) {
    E2E_CHECK(e2e_now() < give_up, "no %s after 30 s", path);
    e2e_sleep_until(e2e_now() + 0.02);
  }
  int want_rows = 0, want_cols = 0;
  E2E_CHECK(fscanf(f, "%d %d", &want_rows, &want_cols) == 2, "bad size file");
  fclose(f);
  struct termios now;
  E2E_CHECK(tcgetattr(0, &now) == 0, "tcgetattr after restore: %s", strerror(errno));
  E2E_CHECK(same_mode(&now, &mode),
            "terminal mode not restored: lflag %#x want %#x, VINTR %#x want %#x", now.c_lflag,
            mode.c_lflag, now.c_cc[VINTR], mode.c_cc[VINTR]);
  E2E_CHECK(tcgetpgrp(0) == getpgrp(), "our group %d is not the terminal's foreground one (%d)",
            getpgrp(), tcgetpgrp(0));
  struct winsize ws;
  E2E_CHECK(ioctl(0, TIOCGWINSZ, &ws) == 0, "TIOCGWINSZ: %s", strerror(errno));
  E2E_CHECK(ws.ws_row == want_rows && ws.ws_col == want_cols, "size %dx%d, want %dx%d", ws.ws_row,
            ws.ws_col, want_rows, want_cols);
  double deadline = e2e_now() + 2;
  while (winches == 0 && e2e_now() < deadline) {
    e2e_sleep_until(e2e_now() + 0.01);
  }
  E2E_CHECK(winches > 0, "no SIGWINCH although the terminal's size changed");
  e2e_pass();
}
