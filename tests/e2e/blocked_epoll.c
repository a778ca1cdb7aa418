// e2e case (runs under vos): two threads are blocked with no timeout at checkpoint time, one in
// epoll_wait() and one in epoll_pwait() (with a signal mask), on two epoll sets that both watch
// one eventfd (each with its own data value) plus a pipe that never becomes readable. An eventfd
// write 1.5 s after ready must wake both with exactly one EPOLLIN event carrying the registered
// data, and the eventfd must then read the written count.
#define _GNU_SOURCE  // before any libc header
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "e2e_common.h"

static const uint64_t kDataA = 0xa11ce5ca1ab1e001ULL, kDataB = 0xb0b0cafe00000002ULL;

struct Waiter {
  int epfd;
  int use_pwait;
  int ret;
  int err;
  struct epoll_event ev[4];
  double returned;
  pthread_t thread;
};

static void* waiter(void* arg) {
  struct Waiter* w = arg;
  if (w->use_pwait) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    w->ret = epoll_pwait(w->epfd, w->ev, 4, -1, &mask);
  } else {
    w->ret = epoll_wait(w->epfd, w->ev, 4, -1);
  }
  w->err = errno;
  w->returned = e2e_now();
  return NULL;
}

static int make_set(int efd, int pipe_rd, uint64_t data) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
  struct epoll_event never = {.events = EPOLLIN, .data.u64 = ~data};
  E2E_CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0 &&
                epoll_ctl(ep, EPOLL_CTL_ADD, pipe_rd, &never) == 0,
            "epoll setup: %s", strerror(errno));
  return ep;
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int p[2];
  E2E_CHECK(efd >= 0 && pipe2(p, O_CLOEXEC) == 0, "eventfd/pipe: %s", strerror(errno));
  struct Waiter a = {.epfd = make_set(efd, p[0], kDataA)};
  struct Waiter b = {.epfd = make_set(efd, p[0], kDataB), .use_pwait = 1};
  pthread_create(&a.thread, NULL, waiter, &a);
  pthread_create(&b.thread, NULL, waiter, &b);
  usleep(50000);  // both waiters are inside epoll before ready
  e2e_ready();
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    e2e_interrupt_thread(a.thread);
  }
  e2e_sleep_until(e2e_ready_time + 1.5);
  double write_time = e2e_now();
  uint64_t five = 5;
  E2E_CHECK(write(efd, &five, sizeof five) == sizeof five, "eventfd write");
  pthread_join(a.thread, NULL);
  pthread_join(b.thread, NULL);

  struct Waiter* ws[] = {&a, &b};
  const uint64_t want[] = {kDataA, kDataB};
  for (int i = 0; i < 2; i++) {
    struct Waiter* w = ws[i];
    const char* name = w->use_pwait ? "epoll_pwait" : "epoll_wait";
    E2E_CHECK(w->ret == 1, "%s returned %d (%s)", name, w->ret, strerror(w->err));
    E2E_CHECK(w->ev[0].events == EPOLLIN, "%s events %#x", name, w->ev[0].events);
    E2E_CHECK(w->ev[0].data.u64 == want[i], "%s data %#llx, want %#llx", name,
              (unsigned long long)w->ev[0].data.u64, (unsigned long long)want[i]);
    E2E_CHECK(w->returned >= write_time, "%s returned before the write", name);
  }
  uint64_t count = 0;
  E2E_CHECK(read(efd, &count, sizeof count) == sizeof count && count == 5,
            "eventfd read %llu, want 5", (unsigned long long)count);
  e2e_pass();
}
