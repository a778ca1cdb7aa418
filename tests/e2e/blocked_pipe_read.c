// e2e case (runs under vos): a thread is blocked in read() on an empty pipe when the checkpoint
// is taken; another thread writes 1.5 s after ready. The read must return exactly the written
// bytes, after the write, with no EINTR and no early EOF (which a lost write end would cause).
#define _GNU_SOURCE  // before any libc header
#include "e2e_common.h"

static int fds[2];
static const char kMsg[] = "sixteen bytes!!";
static double write_time;  // set by the writer just before write()
static double read_return_time;
static ssize_t read_ret;
static int read_errno;
static char buf[64];

static void* reader(void* arg) {
  (void)arg;
  read_ret = read(fds[0], buf, sizeof buf);
  read_errno = errno;
  read_return_time = e2e_now();
  return NULL;
}

static void* writer(void* arg) {
  (void)arg;
  e2e_sleep_until(e2e_ready_time + 1.5);
  write_time = e2e_now();
  E2E_CHECK(write(fds[1], kMsg, sizeof kMsg) == (ssize_t)sizeof kMsg, "write: %s", strerror(errno));
  return NULL;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  E2E_CHECK(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
  pthread_t r, w;
  pthread_create(&r, NULL, reader, NULL);
  usleep(50000);  // let the reader reach read() before ready
  e2e_ready();
  pthread_create(&w, NULL, writer, NULL);
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    e2e_interrupt_thread(r);
  }
  pthread_join(r, NULL);
  pthread_join(w, NULL);

  E2E_CHECK(read_ret >= 0, "read failed: %s", strerror(read_errno));
  E2E_CHECK(read_ret == (ssize_t)sizeof kMsg && memcmp(buf, kMsg, sizeof kMsg) == 0,
            "read returned %zd bytes, want %zu", read_ret, sizeof kMsg);
  E2E_CHECK(read_return_time >= write_time, "read returned %.3f s before the write",
            write_time - read_return_time);
  // Nothing else may be in the pipe (a replayed write would leave a second copy).
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  E2E_CHECK(read(fds[0], buf, sizeof buf) < 0 && errno == EAGAIN, "extra data in the pipe");
  e2e_pass();
}
