// e2e case (runs under vos): file locks of all three kinds, held and waited for, on different
// files and ranges:
//   posix  POSIX record locks (owned by the process): a write lock on bytes 100-199 and a read
//          lock from 1000 to EOF through one fd, a read lock on 500-549 through a second, read-only
//          fd of the same file; the file is also mapped shared and writable (the restore must
//          map it through the program's own fd: closing one of its own would release the locks);
//   ofd    OFD locks (owned by the open file description): a write lock on 0-9 and a read lock
//          from 20 to EOF, through an fd that has a dup sharing them;
//   flock  flock(LOCK_EX) on one file, flock(LOCK_SH) on another;
//   mapped flock(LOCK_EX) held only by a shared mapping: the file was opened, locked, mapped and
//          its fd closed (every JVM does so with its /tmp/hsperfdata_USER/PID file);
//   wait   an OFD write lock on 0-99 and a flock(LOCK_SH), held through two fds, while three
//          threads wait: F_OFD_SETLKW on 50-59 and POSIX F_SETLKW on 60-69 (through other fds;
//          POSIX and OFD locks conflict), and flock(LOCK_EX).
// After the pause the case (a single process until then) checks that /proc/locks lists exactly
// the lines it listed before (the waiters included), that each fd's fdinfo shows the same locks
// (the right open file description), and, from a child forked only now, that F_GETLK,
// F_OFD_GETLK and flock(LOCK_NB) see every lock and no more. Then it releases the blocking locks:
// each waiter must still have been waiting (no EINTR, no lock got early) and get its lock now.
#define _GNU_SOURCE  // before any libc header
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "e2e_common.h"

enum { kFileSize = 4096, kMaxLines = 64 };

struct Lines {
  int n;
  char line[kMaxLines][160];
};

static char dev_inos[8][64];  // "MAJ:MIN:INO " of each file, as /proc/locks writes them
static int ndev_inos;

static int open_file(const char* name, int flags) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", e2e_dir, name);
  int fd = open(path, flags | O_CLOEXEC, 0644);
  E2E_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  return fd;
}

static int make_file(const char* name) {
  int fd = open_file(name, O_RDWR | O_CREAT | O_TRUNC);
  E2E_CHECK(ftruncate(fd, kFileSize) == 0, "ftruncate %s: %s", name, strerror(errno));
  struct stat st;
  E2E_CHECK(fstat(fd, &st) == 0, "fstat %s", name);
  snprintf(dev_inos[ndev_inos++], sizeof dev_inos[0], "%02x:%02x:%lu ", major(st.st_dev),
           minor(st.st_dev), (unsigned long)st.st_ino);
  return fd;
}

static int cmp_lines(const void* a, const void* b) {
  return strcmp((const char*)a, (const char*)b);
}

// The lock lines of `path` (/proc/locks, or fdinfo's "lock:" lines) about this case's files,
// without their ordinal numbers, sorted.
static void read_locks(const char* path, struct Lines* out) {
  FILE* f = fopen(path, "r");
  E2E_CHECK(f != NULL, "open %s: %s", path, strerror(errno));
  out->n = 0;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    char* p = line;
    if (strncmp(p, "lock:", 5) == 0) {
      p += 5;
    } else if (strstr(path, "fdinfo") != NULL) {
      continue;
    }
    char* colon = strchr(p, ':');  // after the ordinal
    if (colon == NULL) {
      continue;
    }
    p = colon + 1;
    while (*p == ' ' || *p == '\t') {
      p++;
    }
    int ours = 0;
    for (int i = 0; i < ndev_inos; i++) {
      ours |= strstr(p, dev_inos[i]) != NULL;
    }
    if (!ours) {
      continue;
    }
    E2E_CHECK(out->n < kMaxLines, "too many lock lines in %s", path);
    p[strcspn(p, "\n")] = '\0';
    snprintf(out->line[out->n++], sizeof out->line[0], "%s", p);
  }
  fclose(f);
  qsort(out->line, (size_t)out->n, sizeof out->line[0], cmp_lines);
}

static void expect_same_lines(const char* what, const struct Lines* before,
                              const struct Lines* now) {
  for (int i = 0; i < before->n || i < now->n; i++) {
    const char* b = i < before->n ? before->line[i] : "(nothing)";
    const char* a = i < now->n ? now->line[i] : "(nothing)";
    E2E_CHECK(strcmp(a, b) == 0, "%s: lock %d of %d was \"%s\", now \"%s\" (%d lines)", what, i + 1,
              before->n, b, a, now->n);
  }
}

static void fdinfo_locks(int fd, struct Lines* out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  read_locks(path, out);
}

static int count_waiters(void) {
  struct Lines l;
  read_locks("/proc/locks", &l);
  int n = 0;
  for (int i = 0; i < l.n; i++) {
    n += strncmp(l.line[i], "->", 2) == 0;
  }
  return n;
}

// The fds.
static int posix_fd, posix_ro_fd, ofd_fd, ofd_dup, flock_ex_fd, flock_sh_fd;
static int wait_holder_fd, wait_flock_holder_fd, wait_ofd_fd, wait_posix_fd, wait_flock_fd;

static int set_lock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock l;
  memset(&l, 0, sizeof l);
  l.l_type = type;
  l.l_whence = SEEK_SET;
  l.l_start = start;
  l.l_len = len;
  return fcntl(fd, cmd, &l);
}

// The waiters: each records what its call returned and whether the blocking lock was released
// by then.
static atomic_int released, ofd_done, posix_done, flock_done;
static int ofd_ret = -2, ofd_errno, ofd_early;
static int posix_ret = -2, posix_errno, posix_early;
static int flock_ret = -2, flock_errno, flock_early;

static void* ofd_waiter(void* arg) {
  (void)arg;
  ofd_ret = set_lock(wait_ofd_fd, F_OFD_SETLKW, F_WRLCK, 50, 10);
  ofd_errno = errno;
  ofd_early = !atomic_load(&released);
  atomic_store(&ofd_done, 1);
  return NULL;
}

static void* posix_waiter(void* arg) {
  (void)arg;
  posix_ret = set_lock(wait_posix_fd, F_SETLKW, F_WRLCK, 60, 10);
  posix_errno = errno;
  posix_early = !atomic_load(&released);
  atomic_store(&posix_done, 1);
  return NULL;
}

static void* flock_waiter(void* arg) {
  (void)arg;
  flock_ret = flock(wait_flock_fd, LOCK_EX);
  flock_errno = errno;
  flock_early = !atomic_load(&released);
  atomic_store(&flock_done, 1);
  return NULL;
}

// In a child (another process, another lock owner): what a second program sees, asked with
// `cmd` (F_GETLK or F_OFD_GETLK, named `what`).
static const char* probe_record(int fd, int cmd, const char* what, short type, off_t start,
                                off_t len, short want) {
  static char why[256];
  struct flock l;
  memset(&l, 0, sizeof l);
  l.l_type = type;
  l.l_whence = SEEK_SET;
  l.l_start = start;
  l.l_len = len;
  if (fcntl(fd, cmd, &l) != 0) {
    snprintf(why, sizeof why, "%s: %s", what, strerror(errno));
    return why;
  }
  if (l.l_type != want) {
    snprintf(why, sizeof why, "%s %s %lld+%lld found type %d (want %d)", what,
             type == F_WRLCK ? "write" : "read", (long long)start, (long long)len, l.l_type, want);
    return why;
  }
  return NULL;
}

static const char* probe_posix(int fd, short type, off_t start, off_t len, short want) {
  return probe_record(fd, F_GETLK, "F_GETLK", type, start, len, want);
}

static const char* probe_ofd(int fd, short type, off_t start, off_t len, short want) {
  return probe_record(fd, F_OFD_GETLK, "F_OFD_GETLK", type, start, len, want);
}

static const char* probe_flock(const char* name, int op, int want_ok) {
  static char why[256];
  int fd = open_file(name, O_RDONLY);
  int r = flock(fd, op | LOCK_NB);
  int e = errno;
  close(fd);
  if ((r == 0) != want_ok) {
    snprintf(why, sizeof why, "flock(%s, %s) %s", name, op == LOCK_EX ? "LOCK_EX" : "LOCK_SH",
             r == 0 ? "got the lock" : strerror(e));
    return why;
  }
  return NULL;
}

static void check_from_another_process(void) {
  int pipefd[2];
  E2E_CHECK(pipe(pipefd) == 0, "pipe");
  pid_t child = fork();
  E2E_CHECK(child >= 0, "fork: %s", strerror(errno));
  if (child == 0) {
    close(pipefd[0]);
    int p = open_file("posix", O_RDWR);
    int o = open_file("ofd", O_RDWR);
    // One probe a line.
    // clang-format off
    const char* probes[] = {
        probe_posix(p, F_WRLCK, 100, 100, F_WRLCK),
        probe_posix(p, F_RDLCK, 199, 1, F_WRLCK),
        probe_posix(p, F_WRLCK, 200, 300, F_UNLCK),
        probe_posix(p, F_WRLCK, 0, 100, F_UNLCK),
        probe_posix(p, F_WRLCK, 549, 1, F_RDLCK),
        probe_posix(p, F_RDLCK, 500, 50, F_UNLCK),
        probe_posix(p, F_WRLCK, 550, 450, F_UNLCK),
        probe_posix(p, F_WRLCK, 1000, 1, F_RDLCK),
        probe_posix(p, F_WRLCK, 1 << 30, 0, F_RDLCK),
        probe_posix(p, F_RDLCK, 1000, 0, F_UNLCK),
        probe_ofd(o, F_RDLCK, 9, 1, F_WRLCK),
        probe_ofd(o, F_WRLCK, 10, 10, F_UNLCK),
        probe_ofd(o, F_WRLCK, 20, 1, F_RDLCK),
        probe_ofd(o, F_WRLCK, 1 << 30, 1, F_RDLCK),
        probe_ofd(o, F_RDLCK, 20, 0, F_UNLCK),
        probe_flock("flock_ex", LOCK_SH, 0),
        probe_flock("flock_sh", LOCK_EX, 0),
        probe_flock("flock_sh", LOCK_SH, 1),
        probe_flock("mapped", LOCK_SH, 0),
    };
    // clang-format on
    char msg[512] = "";
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
      if (probes[i] != NULL) {
        snprintf(msg, sizeof msg, "probe %zu: %s", i + 1, probes[i]);
        break;
      }
    }
    (void)!write(pipefd[1], msg, strlen(msg));
    _exit(0);
  }
  close(pipefd[1]);
  char msg[512];
  ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
  msg[n > 0 ? n : 0] = '\0';
  int st = 0;
  waitpid(child, &st, 0);
  E2E_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "checker child ended with status %#x", st);
  E2E_CHECK(msg[0] == '\0', "another process sees other locks: %s", msg);
}

static void wait_for(atomic_int* flag, const char* what) {
  double until = e2e_now() + 5;
  while (!atomic_load(flag)) {
    E2E_CHECK(e2e_now() < until, "%s: still waiting 5 s after the blocking lock was released",
              what);
    usleep(1000);
  }
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  posix_fd = make_file("posix");
  posix_ro_fd = open_file("posix", O_RDONLY);
  ofd_fd = make_file("ofd");
  flock_ex_fd = make_file("flock_ex");
  flock_sh_fd = make_file("flock_sh");
  wait_holder_fd = make_file("wait");
  wait_flock_holder_fd = open_file("wait", O_RDONLY);
  wait_ofd_fd = open_file("wait", O_RDWR);
  wait_posix_fd = open_file("wait", O_RDWR);
  wait_flock_fd = open_file("wait", O_RDONLY);

  E2E_CHECK(set_lock(posix_fd, F_SETLK, F_WRLCK, 100, 100) == 0, "F_SETLK: %s", strerror(errno));
  E2E_CHECK(set_lock(posix_fd, F_SETLK, F_RDLCK, 1000, 0) == 0, "F_SETLK: %s", strerror(errno));
  E2E_CHECK(set_lock(posix_ro_fd, F_SETLK, F_RDLCK, 500, 50) == 0, "F_SETLK: %s", strerror(errno));
  char* shared = mmap(NULL, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, posix_fd, 0);
  E2E_CHECK(shared != MAP_FAILED, "mmap: %s", strerror(errno));
  memcpy(shared + 2000, "mapped", 6);
  if (set_lock(ofd_fd, F_OFD_SETLK, F_WRLCK, 0, 10) != 0 && errno == EINVAL) {
    e2e_skip("the kernel has no OFD locks (F_OFD_SETLK: EINVAL)");
  }
  E2E_CHECK(set_lock(ofd_fd, F_OFD_SETLK, F_RDLCK, 20, 0) == 0, "F_OFD_SETLK: %s", strerror(errno));
  int mapped_fd = make_file("mapped");
  E2E_CHECK(flock(mapped_fd, LOCK_EX | LOCK_NB) == 0, "flock: %s", strerror(errno));
  char* mapped = mmap(NULL, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, mapped_fd, 0);
  E2E_CHECK(mapped != MAP_FAILED, "mmap: %s", strerror(errno));
  close(mapped_fd);
  memcpy(mapped + 100, "perf", 4);
  ofd_dup = dup(ofd_fd);
  E2E_CHECK(ofd_dup >= 0, "dup: %s", strerror(errno));
  E2E_CHECK(flock(flock_ex_fd, LOCK_EX | LOCK_NB) == 0, "flock: %s", strerror(errno));
  E2E_CHECK(flock(flock_sh_fd, LOCK_SH | LOCK_NB) == 0, "flock: %s", strerror(errno));
  E2E_CHECK(set_lock(wait_holder_fd, F_OFD_SETLK, F_WRLCK, 0, 100) == 0, "F_OFD_SETLK: %s",
            strerror(errno));
  E2E_CHECK(flock(wait_flock_holder_fd, LOCK_SH | LOCK_NB) == 0, "flock: %s", strerror(errno));

  pthread_t waiters[3];
  pthread_create(&waiters[0], NULL, ofd_waiter, NULL);
  pthread_create(&waiters[1], NULL, posix_waiter, NULL);
  pthread_create(&waiters[2], NULL, flock_waiter, NULL);
  double until = e2e_now() + 5;
  while (count_waiters() < 3) {
    E2E_CHECK(e2e_now() < until, "the three waiters are not all waiting after 5 s");
    E2E_CHECK(!ofd_done && !posix_done && !flock_done, "a waiter did not wait");
    usleep(1000);
  }

  const int fds[] = {posix_fd,    posix_ro_fd,   ofd_fd,         ofd_dup,
                     flock_ex_fd, flock_sh_fd,   wait_holder_fd, wait_flock_holder_fd,
                     wait_ofd_fd, wait_posix_fd, wait_flock_fd};
  enum { kFds = sizeof fds / sizeof fds[0] };
  static struct Lines all_before, fd_before[kFds];
  read_locks("/proc/locks", &all_before);
  // 3 POSIX, 2 OFD, 3 flock, 2 held on "wait", 3 waiting.
  E2E_CHECK(all_before.n == 13, "/proc/locks lists %d lock lines of this case, want 13",
            all_before.n);
  for (int i = 0; i < kFds; i++) {
    fdinfo_locks(fds[i], &fd_before[i]);
  }
  E2E_CHECK(fd_before[0].n == 2 && fd_before[1].n == 1 && fd_before[2].n == 2 &&
                fd_before[3].n == 2 && fd_before[4].n == 1 && fd_before[5].n == 1,
            "fdinfo shows unexpected lock counts");

  e2e_ready();
  if (e2e_sabotage()) {
    // A restore that lost part of a lock: the POSIX write lock now covers 100-149 only.
    set_lock(posix_fd, F_SETLK, F_UNLCK, 150, 50);
  }
  e2e_sleep_until(e2e_ready_time + 2.0);

  E2E_CHECK(!ofd_done && !posix_done && !flock_done,
            "a waiter returned before the blocking lock was released: OFD %d (%s), POSIX %d (%s), "
            "flock %d (%s)",
            ofd_ret, ofd_done ? strerror(ofd_errno) : "-", posix_ret,
            posix_done ? strerror(posix_errno) : "-", flock_ret,
            flock_done ? strerror(flock_errno) : "-");
  static struct Lines all_now, fd_now;
  read_locks("/proc/locks", &all_now);
  expect_same_lines("/proc/locks", &all_before, &all_now);
  for (int i = 0; i < kFds; i++) {
    char what[64];
    snprintf(what, sizeof what, "fdinfo of fd %d", fds[i]);
    fdinfo_locks(fds[i], &fd_now);
    expect_same_lines(what, &fd_before[i], &fd_now);
  }
  check_from_another_process();
  // Still the file itself, shared: a write through the mapping is in the file.
  char got[8] = {0};
  E2E_CHECK(pread(posix_fd, got, 6, 2000) == 6 && memcmp(got, "mapped", 6) == 0,
            "the mapped file lost what was written through the mapping");
  memcpy(shared + 3000, "again", 5);
  E2E_CHECK(pread(posix_fd, got, 5, 3000) == 5 && memcmp(got, "again", 5) == 0,
            "the mapping is no longer shared with the file");

  memcpy(mapped + 200, "data", 4);
  int again = open_file("mapped", O_RDONLY);
  E2E_CHECK(pread(again, got, 4, 100) == 4 && memcmp(got, "perf", 4) == 0 &&
                pread(again, got, 4, 200) == 4 && memcmp(got, "data", 4) == 0,
            "the flock-held mapping is no longer the file's");
  close(again);

  // Releasing the blocking locks lets each waiter through.
  atomic_store(&released, 1);
  E2E_CHECK(set_lock(wait_holder_fd, F_OFD_SETLK, F_UNLCK, 0, 0) == 0, "unlock: %s",
            strerror(errno));
  E2E_CHECK(flock(wait_flock_holder_fd, LOCK_UN) == 0, "flock unlock: %s", strerror(errno));
  wait_for(&ofd_done, "F_OFD_SETLKW waiter");
  wait_for(&posix_done, "F_SETLKW waiter");
  wait_for(&flock_done, "flock waiter");
  E2E_CHECK(ofd_ret == 0 && !ofd_early, "F_OFD_SETLKW returned %d (%s)%s", ofd_ret,
            strerror(ofd_errno), ofd_early ? " early" : "");
  E2E_CHECK(posix_ret == 0 && !posix_early, "F_SETLKW returned %d (%s)%s", posix_ret,
            strerror(posix_errno), posix_early ? " early" : "");
  E2E_CHECK(flock_ret == 0 && !flock_early, "flock returned %d (%s)%s", flock_ret,
            strerror(flock_errno), flock_early ? " early" : "");
  for (int i = 0; i < 3; i++) {
    pthread_join(waiters[i], NULL);
  }
  E2E_CHECK(count_waiters() == 0, "lock requests still waiting after all were granted");
  e2e_pass();
}
