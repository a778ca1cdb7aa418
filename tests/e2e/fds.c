// e2e case (runs under vos): one of each kind of file descriptor, each in a state the restore must
// carry: files at non-zero offsets (O_RDWR with a dup sharing its offset, O_RDONLY mid-way,
// O_APPEND), /dev/null at fd 100, a pipe holding unread data, an eventfd with a count, a
// semaphore eventfd, an epoll set with data values, a periodic timerfd, a signalfd with a
// queued SIGUSR2, and two unix sockets (stream, non-blocking; seqpacket) whose socketpair peer
// was closed (a JVM's NIO keeps one). After the pause every fd keeps its number, flags, FD_CLOEXEC,
// target and offset, and each behaves as before: writes land at the offset, the pipe returns its
// bytes, the counters read back, epoll reports all four ready fds, the timer keeps ticking, and the
// signal arrives once with its value, and the orphaned sockets read end-of-file and refuse writes
// (EPIPE).
#define _GNU_SOURCE  // before any libc header
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>

#include "e2e_common.h"

enum { kFileSize = 8192, kPipeBytes = 3000, kNullFd = 100 };

struct FdState {
  const char* name;
  int fd;
  int fl, fdflags;
  off_t offset;  // -1 where not seekable
  char target[256];
  dev_t dev;
  ino_t ino;  // regular files only: the same file, not a copy
};

static void snapshot(struct FdState* s) {
  s->fl = fcntl(s->fd, F_GETFL);
  s->fdflags = fcntl(s->fd, F_GETFD);
  s->offset = lseek(s->fd, 0, SEEK_CUR);
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", s->fd);
  ssize_t n = readlink(link, s->target, sizeof s->target - 1);
  s->target[n > 0 ? n : 0] = '\0';
  struct stat st;
  s->dev = 0;
  s->ino = 0;
  if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode)) {
    s->dev = st.st_dev;
    s->ino = st.st_ino;
  }
}

static void expect_same(const struct FdState* b) {
  struct FdState a = *b;
  snapshot(&a);
  E2E_CHECK(a.fl >= 0, "%s (fd %d) is gone: %s", b->name, b->fd, strerror(errno));
  E2E_CHECK(a.fl == b->fl, "%s: F_GETFL %#x became %#x", b->name, b->fl, a.fl);
  E2E_CHECK(a.fdflags == b->fdflags, "%s: F_GETFD %d became %d", b->name, b->fdflags, a.fdflags);
  E2E_CHECK(a.offset == b->offset, "%s: offset %lld became %lld", b->name, (long long)b->offset,
            (long long)a.offset);
  // Pipe and socket inode numbers may change with the restore; the kind may not.
  size_t kind_len = strncmp(b->target, "pipe:[", 6) == 0     ? 6
                    : strncmp(b->target, "socket:[", 8) == 0 ? 8
                                                             : 0;
  E2E_CHECK(kind_len != 0 ? strncmp(a.target, b->target, kind_len) == 0
                          : strcmp(a.target, b->target) == 0,
            "%s: now points to \"%s\", was \"%s\"", b->name, a.target, b->target);
  E2E_CHECK(a.dev == b->dev && a.ino == b->ino, "%s: no longer the same file", b->name);
}

static uint8_t file_byte(size_t i) {
  return (uint8_t)(e2e_mix(i / 8) >> (i % 8 * 8));
}

static int open_in_dir(const char* name, int flags) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", e2e_dir, name);
  int fd = open(path, flags, 0644);
  E2E_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  return fd;
}

static uint64_t read_u64(int fd, const char* what) {
  uint64_t v = 0;
  E2E_CHECK(read(fd, &v, sizeof v) == sizeof v, "%s read: %s", what, strerror(errno));
  return v;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  static uint8_t data[kFileSize];
  for (size_t i = 0; i < sizeof data; i++) {
    data[i] = file_byte(i);
  }

  int rw = open_in_dir("rw.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC);
  E2E_CHECK(write(rw, data, sizeof data) == sizeof data, "write rw.dat");
  lseek(rw, 1234, SEEK_SET);
  int rw_dup = dup(rw);  // shares the offset, without FD_CLOEXEC

  int ro_setup = open_in_dir("ro.dat", O_WRONLY | O_CREAT | O_TRUNC);
  E2E_CHECK(write(ro_setup, data, sizeof data) == sizeof data, "write ro.dat");
  close(ro_setup);
  int ro = open_in_dir("ro.dat", O_RDONLY);
  char skip[777];
  E2E_CHECK(read(ro, skip, sizeof skip) == sizeof skip, "read ro.dat");

  int app = open_in_dir("app.dat", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC);
  E2E_CHECK(write(app, "first\n", 6) == 6, "write app.dat");

  int null_fd = open("/dev/null", O_WRONLY);
  E2E_CHECK(null_fd >= 0 && dup2(null_fd, kNullFd) == kNullFd, "/dev/null at fd %d", kNullFd);
  close(null_fd);

  int p[2];
  E2E_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2");
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  fcntl(p[0], F_SETFD, 0);  // read end inheritable, write end close-on-exec
  E2E_CHECK(write(p[1], data, kPipeBytes) == kPipeBytes, "pipe write");

  int efd = eventfd(5, EFD_NONBLOCK);
  uint64_t add = 37;
  E2E_CHECK(efd >= 0 && write(efd, &add, sizeof add) == sizeof add, "eventfd");
  int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);

  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct itimerspec period = {{0, 100000000}, {0, 100000000}};
  E2E_CHECK(tfd >= 0 && timerfd_settime(tfd, 0, &period, NULL) == 0, "timerfd");

  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr2, NULL);
  int sfd = signalfd(-1, &usr2, SFD_NONBLOCK | SFD_CLOEXEC);
  union sigval val = {.sival_int = 4242};
  E2E_CHECK(sfd >= 0 && sigqueue(getpid(), SIGUSR2, val) == 0, "signalfd/sigqueue");

  int ep = epoll_create1(EPOLL_CLOEXEC);
  const uint64_t kTags[4] = {0xe7e7e7e7e7e7e7e7ull, 0x919e919e00000001ull, 0x7133e4fd, 0x5161};
  const int watched[4] = {efd, p[0], tfd, sfd};
  for (int i = 0; i < 4; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = kTags[i]};
    E2E_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, watched[i], &ev) == 0, "epoll_ctl: %s", strerror(errno));
  }

  int orphans[2];
  for (int i = 0; i < 2; i++) {
    int sv[2];
    int type = i == 0 ? SOCK_STREAM | SOCK_NONBLOCK : SOCK_SEQPACKET | SOCK_CLOEXEC;
    E2E_CHECK(socketpair(AF_UNIX, type, 0, sv) == 0, "socketpair: %s", strerror(errno));
    close(sv[1]);
    orphans[i] = sv[0];
  }

  struct FdState fds[] = {
      {.name = "rw file", .fd = rw},
      {.name = "dup of rw file", .fd = rw_dup},
      {.name = "ro file", .fd = ro},
      {.name = "append file", .fd = app},
      {.name = "/dev/null", .fd = kNullFd},
      {.name = "pipe read end", .fd = p[0]},
      {.name = "pipe write end", .fd = p[1]},
      {.name = "eventfd", .fd = efd},
      {.name = "semaphore eventfd", .fd = sem},
      {.name = "timerfd", .fd = tfd},
      {.name = "signalfd", .fd = sfd},
      {.name = "epoll", .fd = ep},
      {.name = "orphaned stream socket", .fd = orphans[0]},
      {.name = "orphaned seqpacket socket", .fd = orphans[1]},
  };
  enum { kFds = sizeof fds / sizeof fds[0] };
  for (int i = 0; i < kFds; i++) {
    snapshot(&fds[i]);
  }
  E2E_CHECK(fds[0].offset == 1234 && fds[2].offset == 777 && fds[3].offset == 6,
            "setup offsets wrong");

  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    lseek(rw, 1, SEEK_CUR);  // an offset restored off by one
  }
  e2e_sleep_until(e2e_ready_time + 1.5);

  for (int i = 0; i < kFds; i++) {
    expect_same(&fds[i]);
  }

  // epoll first, before anything is consumed: all four watched fds are ready.
  struct epoll_event evs[8];
  int n = epoll_wait(ep, evs, 8, 0);
  E2E_CHECK(n == 4, "epoll_wait reported %d ready fds, want 4", n);
  unsigned seen = 0;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < 4; j++) {
      if (evs[i].data.u64 == kTags[j] && evs[i].events == EPOLLIN) {
        seen |= 1u << j;
      }
    }
  }
  E2E_CHECK(seen == 0xf, "epoll events carry wrong data (mask %#x)", seen);

  // Writes land at the restored offsets; the dup still shares the rw offset.
  E2E_CHECK(write(rw, "XYZ", 3) == 3, "write rw");
  E2E_CHECK(lseek(rw_dup, 0, SEEK_CUR) == 1237, "dup no longer shares the offset");
  static uint8_t back[kFileSize];
  E2E_CHECK(pread(rw, back, sizeof back, 0) == sizeof back, "pread rw.dat");
  for (size_t i = 0; i < sizeof back; i++) {
    uint8_t want = i >= 1234 && i < 1237 ? (uint8_t) "XYZ"[i - 1234] : file_byte(i);
    E2E_CHECK(back[i] == want, "rw.dat byte %zu is %#x, want %#x", i, back[i], want);
  }
  uint8_t chunk[100];
  E2E_CHECK(read(ro, chunk, sizeof chunk) == sizeof chunk, "read ro.dat");
  for (size_t i = 0; i < sizeof chunk; i++) {
    E2E_CHECK(chunk[i] == file_byte(777 + i), "ro.dat byte %zu read wrong", 777 + i);
  }
  E2E_CHECK(write(app, "second\n", 7) == 7, "write app.dat");
  char app_text[32] = "";
  int app_rd = open_in_dir("app.dat", O_RDONLY | O_CLOEXEC);
  E2E_CHECK(
      read(app_rd, app_text, sizeof app_text - 1) == 13 && strcmp(app_text, "first\nsecond\n") == 0,
      "app.dat holds \"%s\"", app_text);

  struct stat st;
  E2E_CHECK(fstat(kNullFd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) &&
                write(kNullFd, "discard", 7) == 7,
            "fd %d is not /dev/null", kNullFd);

  uint8_t pbuf[4096];
  E2E_CHECK(read(p[0], pbuf, sizeof pbuf) == kPipeBytes, "pipe lost or gained data");
  for (size_t i = 0; i < kPipeBytes; i++) {
    E2E_CHECK(pbuf[i] == file_byte(i), "pipe byte %zu differs", i);
  }
  E2E_CHECK(read(p[0], pbuf, sizeof pbuf) < 0 && errno == EAGAIN, "pipe not empty");
  E2E_CHECK(write(p[1], "abc", 3) == 3 && read(p[0], pbuf, sizeof pbuf) == 3 &&
                memcmp(pbuf, "abc", 3) == 0,
            "pipe ends no longer connected");

  E2E_CHECK(read_u64(efd, "eventfd") == 42, "eventfd count differs");
  E2E_CHECK(read(efd, &add, sizeof add) < 0 && errno == EAGAIN, "eventfd not reset");
  for (int i = 0; i < 3; i++) {
    E2E_CHECK(read_u64(sem, "semaphore eventfd") == 1, "semaphore eventfd read");
  }
  E2E_CHECK(read(sem, &add, sizeof add) < 0 && errno == EAGAIN, "semaphore count above 3");

  struct itimerspec cur;
  E2E_CHECK(timerfd_gettime(tfd, &cur) == 0 && cur.it_interval.tv_sec == 0 &&
                cur.it_interval.tv_nsec == 100000000,
            "timerfd interval lost");
  E2E_CHECK(read_u64(tfd, "timerfd") > 0, "timerfd had no expirations");
  struct pollfd pfd = {tfd, POLLIN, 0};
  E2E_CHECK(poll(&pfd, 1, 300) == 1 && read_u64(tfd, "timerfd") > 0, "timerfd stopped ticking");

  struct signalfd_siginfo si;
  E2E_CHECK(read(sfd, &si, sizeof si) == sizeof si, "signalfd read: %s", strerror(errno));
  E2E_CHECK(si.ssi_signo == SIGUSR2 && si.ssi_code == SI_QUEUE && si.ssi_int == 4242 &&
                si.ssi_pid == (uint32_t)getpid(),
            "signalfd: signal %u code %d value %d pid %u", si.ssi_signo, si.ssi_code, si.ssi_int,
            si.ssi_pid);
  E2E_CHECK(read(sfd, &si, sizeof si) < 0 && errno == EAGAIN, "SIGUSR2 delivered twice");

  for (int i = 0; i < 2; i++) {
    int type = 0;
    socklen_t len = sizeof type;
    E2E_CHECK(getsockopt(orphans[i], SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
                  type == (i == 0 ? SOCK_STREAM : SOCK_SEQPACKET),
              "orphaned socket %d: type %d", i, type);
    char c;
    E2E_CHECK(read(orphans[i], &c, 1) == 0, "orphaned socket %d: read gives no end-of-file: %s", i,
              strerror(errno));
    E2E_CHECK(send(orphans[i], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE,
              "orphaned socket %d: a write did not fail with EPIPE (%s)", i, strerror(errno));
  }
  e2e_pass();
}
