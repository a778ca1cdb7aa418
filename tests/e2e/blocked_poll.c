// e2e case (runs under vos): at checkpoint time one thread is in poll() with a 2 s timeout on a
// pipe nobody writes to, another in poll() with no timeout on a pipe written 1.5 s after ready.
// The first must return 0 after 2..3 s (the timeout keeps its deadline), the second must return
// 1 with POLLIN after the write and read exactly the written bytes; neither may see EINTR.
#define _GNU_SOURCE  // before any libc header
#include <poll.h>

#include "e2e_common.h"

static int quiet[2], woken[2];
static const char kMsg[] = "poll me";

struct Poller {
  int fd;
  int timeout_ms;
  int ret;
  int err;
  short revents;
  double returned;
  pthread_t thread;
};

static void* poller(void* arg) {
  struct Poller* p = arg;
  struct pollfd pfd = {p->fd, POLLIN, 0};
  p->ret = poll(&pfd, 1, p->timeout_ms);
  p->err = errno;
  p->revents = pfd.revents;
  p->returned = e2e_now();
  return NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  E2E_CHECK(pipe2(quiet, O_CLOEXEC) == 0 && pipe2(woken, O_CLOEXEC) == 0, "pipe2");
  struct Poller timed = {.fd = quiet[0], .timeout_ms = 2000};
  struct Poller forever = {.fd = woken[0], .timeout_ms = -1};
  double timed_start = e2e_now();
  pthread_create(&timed.thread, NULL, poller, &timed);
  pthread_create(&forever.thread, NULL, poller, &forever);
  usleep(50000);  // both pollers are inside poll() before ready
  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    e2e_interrupt_thread(forever.thread);
  }
  e2e_sleep_until(e2e_ready_time + 1.5);
  double write_time = e2e_now();
  E2E_CHECK(write(woken[1], kMsg, sizeof kMsg) == (ssize_t)sizeof kMsg, "write");
  pthread_join(timed.thread, NULL);
  pthread_join(forever.thread, NULL);

  E2E_CHECK(timed.ret == 0, "timed poll returned %d (%s)", timed.ret, strerror(timed.err));
  double took = timed.returned - timed_start;
  E2E_CHECK(took >= 2.0 && took < 3.0, "2 s poll timed out after %.3f s", took);
  E2E_CHECK(forever.ret == 1, "poll(-1) returned %d (%s)", forever.ret, strerror(forever.err));
  E2E_CHECK(forever.revents == POLLIN, "poll(-1) revents %#x", forever.revents);
  E2E_CHECK(forever.returned >= write_time, "poll(-1) returned before the write");
  char buf[64];
  E2E_CHECK(read(woken[0], buf, sizeof buf) == (ssize_t)sizeof kMsg &&
                memcmp(buf, kMsg, sizeof kMsg) == 0,
            "pipe data differs");
  e2e_pass();
}
