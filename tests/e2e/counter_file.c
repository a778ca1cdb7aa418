// e2e case (runs under vos): a counter appended to an O_APPEND file every ~2 ms for ~3 s.
// After the pause the file must hold exactly 0..N-1, one per line: a line lost or written twice
// across the checkpoint (a replayed write, a lost offset, a stale in-memory counter) shows up.
#define _GNU_SOURCE  // before any libc header
#include "e2e_common.h"

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  char path[4096];
  snprintf(path, sizeof path, "%s/counter.txt", e2e_dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  E2E_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));

  int n = 0;
  double end = 0;
  for (;;) {
    char line[32];
    int len = snprintf(line, sizeof line, "%d\n", n);
    ssize_t w = write(fd, line, (size_t)len);
    E2E_CHECK(w == len, "write of line %d returned %zd (%s)", n, w, strerror(errno));
    if (e2e_sabotage() && n == 700) {
      E2E_CHECK(write(fd, line, (size_t)len) == len, "sabotage write");  // a replayed write
    }
    n++;
    if (n == 10) {
      e2e_ready();
      end = e2e_ready_time + 3.0;
    }
    if (n > 10 && e2e_now() >= end) {
      break;
    }
    struct timespec two_ms = {0, 2000000};
    nanosleep(&two_ms, NULL);  // pacing only; an early return just writes the next line sooner
  }

  // The file offset of an O_APPEND fd is the end of the file after each write.
  off_t size = lseek(fd, 0, SEEK_END);
  off_t cur = lseek(fd, 0, SEEK_CUR);
  E2E_CHECK(size == cur && size > 0, "offset %lld != size %lld", (long long)cur, (long long)size);
  int fl = fcntl(fd, F_GETFL);
  E2E_CHECK(fl >= 0 && (fl & O_APPEND) && (fl & O_ACCMODE) == O_WRONLY, "F_GETFL=%#x", fl);
  E2E_CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "F_GETFD lost FD_CLOEXEC");

  char* got = malloc((size_t)size + 1);
  int rfd = open(path, O_RDONLY | O_CLOEXEC);
  E2E_CHECK(got != NULL && rfd >= 0, "reopen %s: %s", path, strerror(errno));
  E2E_CHECK(pread(rfd, got, (size_t)size, 0) == size, "short read of %s", path);
  got[size] = '\0';

  // Expected text 0..n-1, compared byte for byte; on mismatch report the first differing line.
  const char* p = got;
  for (int i = 0; i < n; i++) {
    char* endp;
    errno = 0;
    long v = strtol(p, &endp, 10);
    E2E_CHECK(endp != p && *endp == '\n' && v == i, "line %d of %d reads \"%.12s\"", i, n, p);
    p = endp + 1;
  }
  E2E_CHECK(*p == '\0', "file has data after line %d: \"%.12s\"", n - 1, p);
  e2e_pass();
}
