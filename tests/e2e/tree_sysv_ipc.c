// e2e case: a parent and its child talk through a System V message queue and a semaphore set.
// Each round the parent sends a message of its own length and content, the child checks it,
// answers with another and raises two semaphores, one the parent waits on (blocking semop) and
// one that only counts; three messages sent at the start wait in the queue all game long. The
// queue, its messages in flight and the semaphores' values must come back under the same ids,
// shared by both: a message lost, doubled or changed, a count off by one, or an id that differs
// (the child uses the ids it inherited) ends the game.
#define _GNU_SOURCE  // before any libc header
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/wait.h>

#include "e2e_common.h"

enum { kRounds = 3000, kBacklog = 3, kMaxText = 300 };
enum { kToChild = 1, kToParent = 2, kKept = 3 };
enum { kSemAck = 0, kSemCount = 1 };

struct Message {
  long type;
  char text[kMaxText];
};

// Round t's text, of 1 + t % 257 bytes, from `who`'s side.
static size_t text_of(uint64_t t, int who, char* out) {
  size_t len = 1 + t % 257;
  for (size_t i = 0; i < len; ++i) {
    out[i] = (char)(e2e_mix(t * 2654435761u + (uint64_t)who * 977 + i) & 0xff);
  }
  return len;
}

static void send_text(int q, long type, uint64_t t, int who) {
  struct Message m;
  m.type = type;
  size_t len = text_of(t, who, m.text);
  while (msgsnd(q, &m, len, 0) != 0) {
    E2E_CHECK(errno == EINTR && 0, "msgsnd of round %llu: %s", (unsigned long long)t,
              strerror(errno));
  }
}

// Takes the next message of `type` and checks it is round t's from `who`.
static const char* take_text(int q, long type, uint64_t t, int who) {
  struct Message m;
  char want[kMaxText];
  ssize_t n = msgrcv(q, &m, sizeof m.text, type, 0);
  if (n < 0) {
    return strerror(errno);
  }
  size_t len = text_of(t, who, want);
  if ((size_t)n != len || memcmp(m.text, want, len) != 0) {
    return "a message is not the one sent";
  }
  return NULL;
}

static int sem_add(int set, unsigned short num, short delta) {
  struct sembuf op = {num, delta, 0};
  return semop(set, &op, 1);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  key_t key = (key_t)(0x7e000000 | (getpid() & 0xffffff));
  int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  int set = semget(key, 2, IPC_CREAT | IPC_EXCL | 0600);
  E2E_CHECK(q >= 0 && set >= 0, "setup: %s", strerror(errno));
  for (uint64_t i = 0; i < kBacklog; ++i) {
    send_text(q, kKept, 1000000 + i, 0);
  }
  pid_t child = fork();
  E2E_CHECK(child >= 0, "fork: %s", strerror(errno));
  if (child == 0) {
    for (uint64_t t = 0; t < kRounds; ++t) {
      const char* why = take_text(q, kToChild, t, 0);
      if (why != NULL) {
        fprintf(stderr, "child, round %llu: %s\n", (unsigned long long)t, why);
        _exit(1);
      }
      if (t % 100 == 0 && semget(key, 0, 0) != set) {
        fprintf(stderr, "child: the key no longer names set %d\n", set);
        _exit(1);
      }
      send_text(q, kToParent, t, 1);
      if (sem_add(set, kSemCount, 1) != 0 || sem_add(set, kSemAck, 1) != 0) {
        fprintf(stderr, "child, round %llu: semop: %s\n", (unsigned long long)t, strerror(errno));
        _exit(1);
      }
    }
    _exit(0);
  }
  for (uint64_t t = 0; t < kRounds; ++t) {
    send_text(q, kToChild, t, 0);
    // Blocks until the child's answer: often where the checkpoint finds it.
    if (sem_add(set, kSemAck, -1) != 0) {
      kill(child, SIGKILL);
      e2e_fail("round %llu: semop: %s", (unsigned long long)t, strerror(errno));
    }
    const char* why = take_text(q, kToParent, t, 1);
    int count = semctl(set, kSemCount, GETVAL);
    if (why == NULL && count != (int)t + 1) {
      why = "the counting semaphore is off";
    }
    if (why != NULL) {
      kill(child, SIGKILL);
      e2e_fail("round %llu: %s (count %d)", (unsigned long long)t, why, count);
    }
    if (t == 300) {
      e2e_ready();
      if (e2e_sabotage()) {
        sem_add(set, kSemCount, 1);
      }
    }
    e2e_sleep_until(e2e_now() + 0.0005);
  }
  int st = 0;
  E2E_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "the child ended with status %#x", st);
  for (uint64_t i = 0; i < kBacklog; ++i) {
    const char* why = take_text(q, kKept, 1000000 + i, 0);
    E2E_CHECK(why == NULL, "message %llu kept in the queue: %s", (unsigned long long)i, why);
  }
  struct msqid_ds ds;
  E2E_CHECK(msgctl(q, IPC_STAT, &ds) == 0 && ds.msg_qnum == 0, "the queue is not empty at the end");
  msgctl(q, IPC_RMID, NULL);
  semctl(set, 0, IPC_RMID);
  e2e_pass();
}
