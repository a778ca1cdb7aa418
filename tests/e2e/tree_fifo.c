// e2e case: a child writes numbered records into a FIFO (mkfifo) as fast as it can, its parent
// reads and checks them slowly, so the FIFO's buffer is full of bytes in flight whenever the
// checkpoint comes (the child blocked in write, the parent in its sleep or read). The parent
// also holds a second FIFO open for reading and writing on one fd, with a message in it that it
// reads only at the end. A record lost, doubled or changed, the kept message gone, or no
// end-of-file once the child is done, fails.
#define _GNU_SOURCE  // before any libc header
#include <sys/stat.h>
#include <sys/wait.h>

#include "e2e_common.h"

enum { kRecords = 12000, kRecord = 64 };

static void record_of(uint64_t i, char* out) {
  snprintf(out, 9, "%08llu", (unsigned long long)i);
  for (int b = 8; b < kRecord; ++b) {
    out[b] = (char)(e2e_mix(i * 131 + (uint64_t)b) & 0xff);
  }
}

static int read_fully(int fd, char* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, buf + done, len - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return n == 0 ? 0 : -1;
    }
    done += (size_t)n;
  }
  return 1;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  char path[4096], kept_path[4096];
  snprintf(path, sizeof path, "%s/records.fifo", e2e_dir);
  snprintf(kept_path, sizeof kept_path, "%s/kept.fifo", e2e_dir);
  E2E_CHECK(mkfifo(path, 0600) == 0 && mkfifo(kept_path, 0600) == 0, "mkfifo: %s",
            strerror(errno));
  // Opened for reading without waiting for a writer, then made blocking again.
  int in = open(path, O_RDONLY | O_NONBLOCK);
  int kept = open(kept_path, O_RDWR);
  E2E_CHECK(in >= 0 && kept >= 0, "open: %s", strerror(errno));
  E2E_CHECK(fcntl(in, F_SETFL, 0) == 0, "fcntl: %s", strerror(errno));
  const char message[] = "kept in a FIFO of one process all along";
  E2E_CHECK(write(kept, message, sizeof message) == (ssize_t)sizeof message, "write: %s",
            strerror(errno));
  pid_t child = fork();
  E2E_CHECK(child >= 0, "fork: %s", strerror(errno));
  if (child == 0) {
    close(kept);
    int out = open(path, O_WRONLY);
    if (out < 0) {
      _exit(1);
    }
    char rec[kRecord];
    for (uint64_t i = 0; i < kRecords; ++i) {
      record_of(i, rec);
      // A record is below PIPE_BUF: written whole or not at all.
      ssize_t n;
      while ((n = write(out, rec, kRecord)) < 0 && errno == EINTR) {
      }
      if (n != kRecord) {
        _exit(2);
      }
    }
    _exit(0);
  }
  char got[kRecord], want[kRecord];
  for (uint64_t i = 0; i < kRecords; ++i) {
    int r = read_fully(in, got, kRecord);
    // Until the child has opened its end, a read finds no writer: end of file.
    for (double give_up = e2e_now() + 10; i == 0 && r == 0 && e2e_now() < give_up;) {
      e2e_sleep_until(e2e_now() + 0.001);
      r = read_fully(in, got, kRecord);
    }
    E2E_CHECK(r == 1, "record %llu: %s", (unsigned long long)i,
              r == 0 ? "end of file too early" : strerror(errno));
    record_of(i, want);
    E2E_CHECK(memcmp(got, want, kRecord) == 0, "record %llu is not the one written (got %.8s)",
              (unsigned long long)i, got);
    if (i == 1500) {
      e2e_ready();
      if (e2e_sabotage()) {
        E2E_CHECK(read_fully(in, got, kRecord) == 1, "sabotage read");
      }
    }
    if (i % 8 == 0) {
      e2e_sleep_until(e2e_now() + 0.001);
    }
  }
  E2E_CHECK(read_fully(in, got, 1) == 0, "no end of file after the last record");
  int st = 0;
  E2E_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "the child ended with status %#x", st);
  char back[sizeof message] = {0};
  E2E_CHECK(read_fully(kept, back, sizeof back) == 1 && memcmp(back, message, sizeof back) == 0,
            "the kept message is not there: '%s'", back);
  // The FIFOs stay (the harness removes its directory): a restore after this run ends needs
  // them, as a program's files.
  e2e_pass();
}
