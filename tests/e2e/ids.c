// e2e case (runs under vos): the ids a program sees must not change across a restore: getpid,
// getppid, getpgrp, getsid, gettid of every thread, /proc/self and /proc/thread-self, and the
// pid/ppid/pgrp/session fields of /proc/self/stat. pthread_kill(t, 0) must still reach every
// thread (glibc keeps each thread's tid in its descriptor and uses it for tgkill).
#define _GNU_SOURCE  // before any libc header
#include <sys/syscall.h>

#include "e2e_common.h"

enum { kWorkers = 3 };

struct Ids {
  pid_t tid;
  char thread_self[64];
};

static pthread_barrier_t barrier;

static void read_thread_ids(struct Ids* ids) {
  ids->tid = (pid_t)syscall(SYS_gettid);
  ssize_t n = readlink("/proc/thread-self", ids->thread_self, sizeof ids->thread_self - 1);
  ids->thread_self[n > 0 ? n : 0] = '\0';
}

static void* worker(void* arg) {
  struct Ids *before = arg, after;
  read_thread_ids(before);
  pthread_barrier_wait(&barrier);  // ids recorded
  pthread_barrier_wait(&barrier);  // after the pause
  read_thread_ids(&after);
  E2E_CHECK(after.tid == before->tid, "thread tid %d became %d", before->tid, after.tid);
  E2E_CHECK(strcmp(after.thread_self, before->thread_self) == 0, "/proc/thread-self %s became %s",
            before->thread_self, after.thread_self);
  pthread_barrier_wait(&barrier);  // checked
  return NULL;
}

struct ProcessIds {
  pid_t pid, ppid, pgrp, sid;
  struct Ids main_thread;
  char proc_self[64];
  char stat_fields[128];  // "pid (comm) state ppid pgrp session" from /proc/self/stat
};

static void read_process_ids(struct ProcessIds* p) {
  p->pid = getpid();
  p->ppid = getppid();
  p->pgrp = getpgrp();
  p->sid = getsid(0);
  read_thread_ids(&p->main_thread);
  ssize_t n = readlink("/proc/self", p->proc_self, sizeof p->proc_self - 1);
  p->proc_self[n > 0 ? n : 0] = '\0';
  char stat[512] = "";
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? read(fd, stat, sizeof stat - 1) : -1;
  if (fd >= 0) {
    close(fd);
  }
  stat[n > 0 ? n : 0] = '\0';
  // Keep fields 1..6; the comm field (2) has no spaces here, the rest changes over time.
  int pid = 0, ppid = 0, pgrp = 0, session = 0;
  char comm[64] = "", state = '?';
  sscanf(stat, "%d %63s %c %d %d %d", &pid, comm, &state, &ppid, &pgrp, &session);
  snprintf(p->stat_fields, sizeof p->stat_fields, "pid %d %s ppid %d pgrp %d session %d", pid, comm,
           ppid, pgrp, session);
  E2E_CHECK(pid != 0 && atoi(p->proc_self) == pid,
            "/proc/self (%s) and /proc/self/stat (%d) differ", p->proc_self, pid);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  pthread_barrier_init(&barrier, NULL, kWorkers + 1);
  struct Ids worker_ids[kWorkers];
  pthread_t workers[kWorkers];
  for (int i = 0; i < kWorkers; i++) {
    pthread_create(&workers[i], NULL, worker, &worker_ids[i]);
  }
  struct ProcessIds before, after;
  read_process_ids(&before);
  pthread_barrier_wait(&barrier);  // every worker recorded its ids
  for (int i = 0; i < kWorkers; i++) {
    for (int j = 0; j < i; j++) {
      E2E_CHECK(worker_ids[i].tid != worker_ids[j].tid, "two threads share tid %d",
                worker_ids[i].tid);
    }
  }
  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    if (fork() != 0) {  // a "restored" copy with another pid carries on
      _exit(0);
    }
  }
  e2e_sleep_until(e2e_ready_time + 1.5);

  read_process_ids(&after);
  E2E_CHECK(after.pid == before.pid, "getpid %d became %d", before.pid, after.pid);
  E2E_CHECK(after.ppid == before.ppid, "getppid %d became %d", before.ppid, after.ppid);
  E2E_CHECK(after.pgrp == before.pgrp, "getpgrp %d became %d", before.pgrp, after.pgrp);
  E2E_CHECK(after.sid == before.sid, "getsid %d became %d", before.sid, after.sid);
  E2E_CHECK(after.main_thread.tid == before.main_thread.tid, "main tid %d became %d",
            before.main_thread.tid, after.main_thread.tid);
  E2E_CHECK(strcmp(after.main_thread.thread_self, before.main_thread.thread_self) == 0,
            "/proc/thread-self %s became %s", before.main_thread.thread_self,
            after.main_thread.thread_self);
  E2E_CHECK(strcmp(after.proc_self, before.proc_self) == 0, "/proc/self %s became %s",
            before.proc_self, after.proc_self);
  E2E_CHECK(strcmp(after.stat_fields, before.stat_fields) == 0,
            "/proc/self/stat \"%s\" became \"%s\"", before.stat_fields, after.stat_fields);
  for (int i = 0; i < kWorkers; i++) {
    int err = pthread_kill(workers[i], 0);
    E2E_CHECK(err == 0, "pthread_kill(worker %d, 0): %s", i, strerror(err));
  }
  pthread_barrier_wait(&barrier);  // workers compare their own ids
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < kWorkers; i++) {
    pthread_join(workers[i], NULL);
  }
  e2e_pass();
}
