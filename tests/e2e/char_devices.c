// e2e case (runs under vos): character devices a program keeps open and vos reopens by path:
// /dev/random (non-blocking, as a JVM's SecureRandom keeps it), /dev/urandom, /dev/zero,
// /dev/full and /dev/null at high numbers, one without close-on-exec. After the pause each fd
// keeps its number, flags and device, and behaves as that device: zero reads zeros, full refuses
// writes with ENOSPC, the random devices give bytes, null swallows.
#define _GNU_SOURCE  // before any libc header
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "e2e_common.h"

struct Dev {
  const char* path;
  int flags;
  int fd;  // where it is kept
  unsigned major, minor;
  int fl, fdflags;
};

static struct Dev devs[] = {
    {"/dev/random", O_RDONLY | O_NONBLOCK | O_CLOEXEC, 40, 1, 8, 0, 0},
    {"/dev/urandom", O_RDONLY, 41, 1, 9, 0, 0},
    {"/dev/zero", O_RDWR | O_CLOEXEC, 42, 1, 5, 0, 0},
    {"/dev/full", O_WRONLY | O_CLOEXEC, 43, 1, 7, 0, 0},
    {"/dev/null", O_WRONLY | O_APPEND, 44, 1, 3, 0, 0},
};
enum { kDevs = sizeof devs / sizeof devs[0] };

static void check_device(const struct Dev* d) {
  struct stat st;
  E2E_CHECK(fstat(d->fd, &st) == 0, "%s (fd %d) is gone: %s", d->path, d->fd, strerror(errno));
  E2E_CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == d->major && minor(st.st_rdev) == d->minor,
            "fd %d is no longer %s", d->fd, d->path);
  int fl = fcntl(d->fd, F_GETFL), fdflags = fcntl(d->fd, F_GETFD);
  E2E_CHECK(fl == d->fl, "%s: F_GETFL %#x became %#x", d->path, d->fl, fl);
  E2E_CHECK(fdflags == d->fdflags, "%s: F_GETFD %d became %d", d->path, d->fdflags, fdflags);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  for (int i = 0; i < kDevs; ++i) {
    int fd = open(devs[i].path, devs[i].flags);
    E2E_CHECK(fd >= 0, "open %s: %s", devs[i].path, strerror(errno));
    E2E_CHECK(dup3(fd, devs[i].fd, devs[i].flags & O_CLOEXEC) == devs[i].fd, "dup3: %s",
              strerror(errno));
    close(fd);
    devs[i].fl = fcntl(devs[i].fd, F_GETFL);
    devs[i].fdflags = fcntl(devs[i].fd, F_GETFD);
  }
  e2e_ready();
  if (e2e_sabotage()) {  // what a restore that left a device out would look like
    close(devs[2].fd);
  }
  e2e_sleep_until(e2e_ready_time + 2.5);  // the harness checkpoints, kills and restores meanwhile
  for (int i = 0; i < kDevs; ++i) {
    check_device(&devs[i]);
  }
  unsigned char buf[4096];
  memset(buf, 0xa5, sizeof buf);
  E2E_CHECK(read(devs[2].fd, buf, sizeof buf) == (ssize_t)sizeof buf, "read /dev/zero: %s",
            strerror(errno));
  for (size_t i = 0; i < sizeof buf; ++i) {
    E2E_CHECK(buf[i] == 0, "/dev/zero gave %#x at %zu", buf[i], i);
  }
  errno = 0;
  E2E_CHECK(write(devs[3].fd, buf, 16) < 0 && errno == ENOSPC, "/dev/full took a write (%s)",
            strerror(errno));
  E2E_CHECK(write(devs[4].fd, buf, sizeof buf) == (ssize_t)sizeof buf, "write /dev/null: %s",
            strerror(errno));
  for (int r = 0; r < 2; ++r) {
    unsigned char a[64] = {0}, b[64] = {0};
    E2E_CHECK(read(devs[r].fd, a, sizeof a) == (ssize_t)sizeof a, "read %s: %s", devs[r].path,
              strerror(errno));
    E2E_CHECK(read(devs[r].fd, b, sizeof b) == (ssize_t)sizeof b, "read %s: %s", devs[r].path,
              strerror(errno));
    E2E_CHECK(memcmp(a, b, sizeof a) != 0, "%s gave the same 64 bytes twice", devs[r].path);
  }
  e2e_pass();
}
