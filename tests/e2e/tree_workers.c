// e2e case: a parent with four forked workers (a process tree). Each worker streams numbered,
// checksummable records to the parent through its own pipe (worker 0 mixes into each a word it
// reads from a socketpair the parent filled at the start: the rest waits queued through the
// checkpoint), counts them in memory all of them
// share (MAP_SHARED|MAP_ANONYMOUS, inherited across fork), and appends a line now and then to a
// log whose open file description all of them share (one offset: nothing overwritten). Worker 3
// ends before ready and is left unreaped: a zombie through the checkpoint, whose exit status the
// parent collects after the restore. Workers 1 and 2 form a process group of their own. Checked
// at the end: every record in order with the right value, each worker's exit status and parent,
// the groups, every log line present once, and that no process has a child it never made.
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "e2e_common.h"

enum { kWorkers = 4, kRecords = 2500, kZombieRecords = 5, kLogEvery = 100 };

// In the shared memory: each worker's count of records sent, and a page the parent fills with a
// pattern before the workers exist (found intact, and the same, by all after the restore).
struct Shared {
  volatile uint64_t sent[kWorkers];
  char pattern[4096 * 3];
};
static struct Shared* shared;

struct Record {
  uint64_t index;
  uint64_t value;
};

static uint64_t word_of(uint64_t k) {
  return e2e_mix(k + 777);
}

// Worker 0's records carry the word it read from the socketpair for them.
static uint64_t value_of(int worker, uint64_t k) {
  return e2e_mix(((uint64_t)worker << 32) ^ k) ^ (worker == 0 ? word_of(k) : 0);
}

static int words_fd = -1;  // worker 0's end of the socketpair

static int records_of(int worker) {
  return worker == 3 ? kZombieRecords : kRecords;
}

static int write_all(int fd, const void* p, size_t n) {
  const char* c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

__attribute__((noreturn)) static void worker(int i, int out, int log_fd, pid_t parent) {
  for (int k = 0; k < records_of(i); ++k) {
    uint64_t word = 0;
    if (i == 0) {
      size_t got = 0;
      while (got < sizeof word) {
        ssize_t n = read(words_fd, (char*)&word + got, sizeof word - got);
        if (n <= 0) {
          _exit(92);
        }
        got += (size_t)n;
      }
      if (word != word_of((uint64_t)k)) {
        _exit(93);
      }
    }
    struct Record r = {(uint64_t)k, value_of(i, (uint64_t)k)};
    if (write_all(out, &r, sizeof r) != 0) {
      _exit(90);
    }
    __atomic_add_fetch(&shared->sent[i], 1, __ATOMIC_SEQ_CST);
    if (k % kLogEvery == 0) {
      char line[64];
      int n = snprintf(line, sizeof line, "worker %d record %d\n", i, k);
      if (write_all(log_fd, line, (size_t)n) != 0) {
        _exit(91);
      }
    }
    if (i != 3) {
      e2e_sleep_until(e2e_now() + 0.001);
    }
  }
  for (size_t k = 0; k < sizeof shared->pattern; ++k) {
    if (shared->pattern[k] != (char)(k * 7 + 1)) {
      _exit(98);
    }
  }
  char kids[256];
  if (e2e_children(kids, sizeof kids)) {
    _exit(97);  // see main
  }
  _exit(getppid() == parent ? 10 + i : 99);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  char log_path[4096];
  snprintf(log_path, sizeof log_path, "%s/workers.log", e2e_dir);
  int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0 || setpgid(0, 0) != 0) {
    e2e_fail("setup: %s", strerror(errno));
  }
  shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    e2e_fail("mmap: %s", strerror(errno));
  }
  for (size_t k = 0; k < sizeof shared->pattern; ++k) {
    shared->pattern[k] = (char)(k * 7 + 1);
  }
  int words[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, words) != 0) {
    e2e_fail("socketpair: %s", strerror(errno));
  }
  // 20 KB queued at once (one write: thousands of small ones would fill the socket's send
  // buffer with their overhead), read a word per record.
  static uint64_t all_words[kRecords];
  for (uint64_t k = 0; k < kRecords; ++k) {
    all_words[k] = word_of(k);
  }
  if (write_all(words[0], all_words, sizeof all_words) != 0) {
    e2e_fail("filling the socketpair: %s", strerror(errno));
  }
  pid_t pids[kWorkers];
  int in[kWorkers];
  pid_t self = getpid();
  for (int i = 0; i < kWorkers; ++i) {
    int p[2];
    if (pipe(p) != 0) {
      e2e_fail("pipe: %s", strerror(errno));
    }
    pids[i] = fork();
    if (pids[i] < 0) {
      e2e_fail("fork: %s", strerror(errno));
    }
    if (pids[i] == 0) {
      close(p[0]);
      for (int j = 0; j < i; ++j) {
        close(in[j]);
      }
      close(words[0]);
      words_fd = words[1];
      if (i == 1) {
        setpgid(0, 0);
      }
      if (i == 2) {
        setpgid(0, pids[1]);
      }
      worker(i, p[1], log_fd, self);
    }
    // Set from both sides, as a shell does for a job: whichever runs first, the group exists
    // before worker 2 joins it.
    if (i == 1) {
      setpgid(pids[1], pids[1]);
    }
    if (i == 2) {
      setpgid(pids[2], pids[1]);
    }
    close(p[1]);
    in[i] = p[0];
  }
  close(words[1]);
  struct Record last[kWorkers];
  uint64_t got[kWorkers] = {0};
  memset(last, 0, sizeof last);
  struct pollfd fds[kWorkers];
  for (int i = 0; i < kWorkers; ++i) {
    fds[i] = (struct pollfd){in[i], POLLIN, 0};
  }
  int open_pipes = kWorkers;
  int ready = 0;
  while (open_pipes > 0) {
    if (!ready && fds[3].fd < 0) {
      e2e_ready();  // worker 3 has ended: a zombie until the end
      ready = 1;
      if (e2e_sabotage()) {
        kill(pids[0], SIGKILL);
      }
    }
    if (poll(fds, kWorkers, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      e2e_fail("poll: %s", strerror(errno));
    }
    for (int i = 0; i < kWorkers; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) {
        continue;
      }
      struct Record r;
      size_t have = 0;
      while (have < sizeof r) {
        ssize_t n = read(fds[i].fd, (char*)&r + have, sizeof r - have);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n <= 0) {
          break;
        }
        have += (size_t)n;
      }
      if (have == 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_pipes;
        continue;
      }
      if (have != sizeof r || r.index != got[i] || r.value != value_of(i, r.index)) {
        e2e_fail("worker %d: record %llu is wrong (index %llu)", i, (unsigned long long)got[i],
                 (unsigned long long)r.index);
      }
      last[i] = r;
      ++got[i];
    }
  }
  if (!ready) {
    e2e_fail("worker 3 never ended");
  }
  for (int i = 0; i < kWorkers; ++i) {
    if (got[i] != (uint64_t)records_of(i)) {
      e2e_fail("worker %d: %llu records of %d", i, (unsigned long long)got[i], records_of(i));
    }
    if (shared->sent[i] != got[i]) {
      e2e_fail("worker %d: %llu records counted in shared memory, %llu received", i,
               (unsigned long long)shared->sent[i], (unsigned long long)got[i]);
    }
    if (i == 2 && getpgid(pids[2]) != pids[1]) {
      e2e_fail("worker 2 is in group %d, not worker 1's %d", getpgid(pids[2]), pids[1]);
    }
  }
  for (int i = 0; i < kWorkers; ++i) {
    int st = 0;
    if (waitpid(pids[i], &st, 0) != pids[i]) {
      e2e_fail("waitpid(worker %d, pid %d): %s", i, pids[i], strerror(errno));
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 97) {
      e2e_fail("worker %d has a child it never made", i);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 10 + i) {
      e2e_fail("worker %d ended with status %#x, not exit %d", i, st, 10 + i);
    }
  }
  // Nothing else is a child of the parent, nor of a worker (exit 97): not a copy a live
  // checkpoint made of one (a snapshot) and left behind.
  char kids[256];
  if (e2e_children(kids, sizeof kids)) {
    e2e_fail("the parent has children it never made: %s", kids);
  }
  FILE* f = fopen(log_path, "r");
  int lines[kWorkers] = {0};
  char line[128];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    int w = -1, k = -1;
    if (sscanf(line, "worker %d record %d", &w, &k) == 2 && w >= 0 && w < kWorkers &&
        k == lines[w] * kLogEvery) {
      ++lines[w];
    } else {
      e2e_fail("log line out of place: %s", line);
    }
  }
  for (int i = 0; i < kWorkers; ++i) {
    int want = (records_of(i) + kLogEvery - 1) / kLogEvery;
    if (lines[i] != want) {
      e2e_fail("worker %d: %d log lines of %d", i, lines[i], want);
    }
  }
  e2e_pass();
}
