// e2e case (runs under vos): open files whose names are gone, as sqlite's temporary files,
// tmpfile() and a log rotated away leave them. A data file (68 KiB, O_RDWR at offset 5000) with a
// dup sharing that offset, a second open of it (O_RDONLY, its own offset 777), a MAP_SHARED
// mapping of three of its pages and a MAP_PRIVATE one with a page the program wrote; a log
// (O_WRONLY|O_APPEND, mode 0640); an empty deleted file; a tmpfile() with unflushed and flushed
// text. All are unlinked before ready. After the restore each fd has its flags, offset, size,
// mode and content, is still unnamed (nlink 0, "(deleted)" in the same directory), the fds of one
// file share that one file (the dup its offset too, the second open not), and the shared
// mapping is that same file: writes through the fd show in it and the other way round.
#define _GNU_SOURCE  // before any libc header
#include <libgen.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "e2e_common.h"

enum { kDataSize = 68 * 1024 + 123, kPage = 4096, kSharedOff = 2 * kPage, kSharedLen = 3 * kPage };

static uint8_t data_byte(size_t i) {
  return (uint8_t)(e2e_mix(i / 8 + 77) >> (i % 8 * 8));
}

struct Fd {
  const char* name;
  int fd;
  int fl, fdflags;
  off_t offset;
  struct stat st;
  char dir[4096];  // the directory its "(deleted)" link names
};

static void link_dir(int fd, char* out, size_t size) {
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  E2E_CHECK(n > 0, "readlink %s: %s", link, strerror(errno));
  target[n] = '\0';
  const char* suffix = " (deleted)";
  size_t len = strlen(target), sl = strlen(suffix);
  E2E_CHECK(len > sl && strcmp(target + len - sl, suffix) == 0, "fd %d is \"%s\", not deleted", fd,
            target);
  target[len - sl] = '\0';
  snprintf(out, size, "%s", dirname(target));
}

static void snapshot(struct Fd* f) {
  f->fl = fcntl(f->fd, F_GETFL);
  f->fdflags = fcntl(f->fd, F_GETFD);
  f->offset = lseek(f->fd, 0, SEEK_CUR);
  E2E_CHECK(f->fl >= 0 && fstat(f->fd, &f->st) == 0, "%s (fd %d) is gone: %s", f->name, f->fd,
            strerror(errno));
  link_dir(f->fd, f->dir, sizeof f->dir);
}

static void expect_same(const struct Fd* b) {
  struct Fd a = *b;
  snapshot(&a);
  E2E_CHECK(a.fl == b->fl, "%s: F_GETFL %#x became %#x", b->name, b->fl, a.fl);
  E2E_CHECK(a.fdflags == b->fdflags, "%s: F_GETFD %d became %d", b->name, b->fdflags, a.fdflags);
  E2E_CHECK(a.offset == b->offset, "%s: offset %lld became %lld", b->name, (long long)b->offset,
            (long long)a.offset);
  E2E_CHECK(S_ISREG(a.st.st_mode) && a.st.st_nlink == 0, "%s: not an unnamed file (nlink %lu)",
            b->name, (unsigned long)a.st.st_nlink);
  E2E_CHECK(a.st.st_size == b->st.st_size, "%s: size %lld became %lld", b->name,
            (long long)b->st.st_size, (long long)a.st.st_size);
  E2E_CHECK((a.st.st_mode & 07777) == (b->st.st_mode & 07777), "%s: mode %o became %o", b->name,
            b->st.st_mode & 07777, a.st.st_mode & 07777);
  E2E_CHECK(a.st.st_dev == b->st.st_dev, "%s: no longer on the same filesystem", b->name);
  E2E_CHECK(strcmp(a.dir, b->dir) == 0, "%s: now in %s, was in %s", b->name, a.dir, b->dir);
}

static void expect_same_file(const struct Fd* a, const struct Fd* b) {
  struct stat sa, sb;
  E2E_CHECK(fstat(a->fd, &sa) == 0 && fstat(b->fd, &sb) == 0 && sa.st_dev == sb.st_dev &&
                sa.st_ino == sb.st_ino,
            "%s and %s are no longer one file", a->name, b->name);
}

static void expect_data(int fd, size_t size, size_t changed_at, const char* changed) {
  static uint8_t back[kDataSize];
  E2E_CHECK(pread(fd, back, size, 0) == (ssize_t)size, "pread data: %s", strerror(errno));
  size_t clen = changed ? strlen(changed) : 0;
  for (size_t i = 0; i < size; i++) {
    uint8_t want = changed && i >= changed_at && i < changed_at + clen
                       ? (uint8_t)changed[i - changed_at]
                       : data_byte(i);
    E2E_CHECK(back[i] == want, "data byte %zu is %#x, want %#x", i, back[i], want);
  }
}

static int create_in_dir(const char* name, int flags, mode_t mode, char* path, size_t size) {
  snprintf(path, size, "%s/%s", e2e_dir, name);
  int fd = open(path, flags | O_CREAT | O_EXCL, mode);
  E2E_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  E2E_CHECK(fchmod(fd, mode) == 0, "fchmod %s", path);  // whatever the umask
  return fd;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  static uint8_t data[kDataSize];
  for (size_t i = 0; i < sizeof data; i++) {
    data[i] = data_byte(i);
  }
  char path[4096];

  int rw = create_in_dir("data.tmp", O_RDWR | O_CLOEXEC, 0600, path, sizeof path);
  E2E_CHECK(write(rw, data, sizeof data) == sizeof data, "write data");
  lseek(rw, 5000, SEEK_SET);
  int rw_dup = dup(rw);
  int ro = open(path, O_RDONLY);
  char skip[777];
  E2E_CHECK(ro >= 0 && read(ro, skip, sizeof skip) == sizeof skip, "second open of data");
  uint8_t* shared = mmap(NULL, kSharedLen, PROT_READ | PROT_WRITE, MAP_SHARED, rw, kSharedOff);
  uint8_t* priv = mmap(NULL, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, rw, 0);
  E2E_CHECK(shared != MAP_FAILED && priv != MAP_FAILED, "mmap data: %s", strerror(errno));
  memcpy(priv + 100, "private copy", 12);  // page 0 becomes the program's own; page 1 is the file's
  E2E_CHECK(unlink(path) == 0, "unlink %s", path);

  int log = create_in_dir("app.log", O_WRONLY | O_APPEND, 0640, path, sizeof path);
  E2E_CHECK(write(log, "line 1\nline 2\n", 14) == 14, "write log");
  E2E_CHECK(unlink(path) == 0, "unlink %s", path);  // rotated away

  int empty = create_in_dir("empty.tmp", O_RDWR, 0604, path, sizeof path);
  E2E_CHECK(unlink(path) == 0, "unlink %s", path);

  FILE* tmp = tmpfile();
  E2E_CHECK(tmp != NULL, "tmpfile: %s", strerror(errno));
  fputs("flushed text\n", tmp);
  fflush(tmp);
  fputs("still in the stdio buffer\n", tmp);

  struct Fd fds[] = {
      {.name = "data", .fd = rw},
      {.name = "dup of data", .fd = rw_dup},
      {.name = "second open of data", .fd = ro},
      {.name = "log", .fd = log},
      {.name = "empty", .fd = empty},
      {.name = "tmpfile", .fd = fileno(tmp)},
  };
  enum { kFds = sizeof fds / sizeof fds[0] };
  for (int i = 0; i < kFds; i++) {
    snapshot(&fds[i]);
  }

  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    E2E_CHECK(pwrite(rw, "X", 1, 30000) == 1, "sabotage");  // content restored wrong
  }
  e2e_sleep_until(e2e_ready_time + 1.5);

  for (int i = 0; i < kFds; i++) {
    expect_same(&fds[i]);
  }
  expect_same_file(&fds[0], &fds[1]);
  expect_same_file(&fds[0], &fds[2]);
  expect_data(rw, kDataSize, 0, NULL);
  E2E_CHECK(memcmp(shared, data + kSharedOff, kSharedLen) == 0, "shared mapping content differs");
  E2E_CHECK(memcmp(priv + 100, "private copy", 12) == 0 && memcmp(priv, data, 100) == 0,
            "private mapping lost the program's own page");
  E2E_CHECK(memcmp(priv + kPage, data + kPage, kPage) == 0, "private mapping: file page differs");

  // The dup shares the offset, the second open keeps its own.
  E2E_CHECK(write(rw, "ABC", 3) == 3, "write data");
  E2E_CHECK(lseek(rw_dup, 0, SEEK_CUR) == 5003, "dup no longer shares the offset");
  E2E_CHECK(lseek(ro, 0, SEEK_CUR) == 777, "second open moved with the first");
  uint8_t got[3];
  E2E_CHECK(pread(ro, got, 3, 5000) == 3 && memcmp(got, "ABC", 3) == 0,
            "second open does not see the first's write");
  // The shared mapping is the same file as the fds, both ways.
  E2E_CHECK(pwrite(rw, "fd->map", 7, kSharedOff + 10) == 7, "pwrite data");
  E2E_CHECK(memcmp(shared + 10, "fd->map", 7) == 0, "shared mapping does not see the fd's write");
  memcpy(shared + kPage + 20, "map->fd", 7);
  E2E_CHECK(pread(ro, got, 3, kSharedOff + kPage + 20) == 3 && memcmp(got, "map", 3) == 0,
            "the fd does not see the shared mapping's write");

  // The log appends where it ended, and reads back (through a new open of the unnamed file)
  // what it held plus that.
  E2E_CHECK(write(log, "line 3\n", 7) == 7, "write log");
  char proc[64], text[64] = "";
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", log);
  int log_rd = open(proc, O_RDONLY);
  E2E_CHECK(log_rd >= 0 && read(log_rd, text, sizeof text - 1) == 21 &&
                strcmp(text, "line 1\nline 2\nline 3\n") == 0,
            "log holds \"%s\"", text);
  E2E_CHECK(lseek(empty, 0, SEEK_END) == 0, "the empty file is not empty");
  // tmpfile(): what was flushed is in the file, the rest in the stdio buffer (memory).
  E2E_CHECK(fseek(tmp, 0, SEEK_SET) == 0, "fseek tmpfile");
  memset(text, 0, sizeof text);
  E2E_CHECK(fread(text, 1, sizeof text - 1, tmp) == 39 &&
                strcmp(text, "flushed text\nstill in the stdio buffer\n") == 0,
            "tmpfile holds \"%s\"", text);
  e2e_pass();
}
