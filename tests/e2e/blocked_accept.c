// e2e case (runs under vos): a TCP listener on 127.0.0.1 (port picked by bind to port 0) and a
// thread blocked in accept() at checkpoint time. 1.5 s after ready another thread of the program
// connects to the port it learned before the checkpoint. accept() must return that connection
// (right peer address, no EINTR), data must flow both ways, and the listener must keep its port
// and options.
#define _GNU_SOURCE  // before any libc header
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "e2e_common.h"

static int listener;
static uint16_t port;  // host order, learned before the checkpoint
static int accept_fd = -1, accept_errno;
static struct sockaddr_in peer;
static double accept_time, connect_time;
static uint16_t connector_port;
static char got_hello[32], got_ack[8];

static const char kHello[] = "hello listener";
static const char kAck[] = "ack";

static int read_full(int fd, char* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = read(fd, buf + done, len - done);
    if (r <= 0) {
      return -1;
    }
    done += (size_t)r;
  }
  return 0;
}

static void* acceptor(void* arg) {
  (void)arg;
  socklen_t len = sizeof peer;
  accept_fd = accept(listener, (struct sockaddr*)&peer, &len);
  accept_errno = errno;
  accept_time = e2e_now();
  if (accept_fd >= 0) {
    E2E_CHECK(read_full(accept_fd, got_hello, sizeof kHello) == 0, "read hello: %s",
              strerror(errno));
    E2E_CHECK(write(accept_fd, kAck, sizeof kAck) == (ssize_t)sizeof kAck, "write ack");
  }
  return NULL;
}

static void* connector(void* arg) {
  (void)arg;
  e2e_sleep_until(e2e_ready_time + 1.5);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect_time = e2e_now();
  E2E_CHECK(connect(s, (struct sockaddr*)&to, sizeof to) == 0, "connect to port %u: %s", port,
            strerror(errno));
  struct sockaddr_in me;
  socklen_t len = sizeof me;
  getsockname(s, (struct sockaddr*)&me, &len);
  connector_port = ntohs(me.sin_port);
  E2E_CHECK(write(s, kHello, sizeof kHello) == (ssize_t)sizeof kHello, "write hello");
  E2E_CHECK(read_full(s, got_ack, sizeof kAck) == 0, "read ack: %s", strerror(errno));
  close(s);
  return NULL;
}

static uint16_t bound_port(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  E2E_CHECK(getsockname(fd, (struct sockaddr*)&a, &len) == 0, "getsockname: %s", strerror(errno));
  E2E_CHECK(a.sin_family == AF_INET && a.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
            "listener address changed");
  return ntohs(a.sin_port);
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  E2E_CHECK(bind(listener, (struct sockaddr*)&addr, sizeof addr) == 0 && listen(listener, 4) == 0,
            "bind/listen: %s", strerror(errno));
  port = bound_port(listener);

  pthread_t ta, tc;
  pthread_create(&ta, NULL, acceptor, NULL);
  usleep(50000);  // the acceptor is inside accept() before ready
  e2e_ready();
  pthread_create(&tc, NULL, connector, NULL);
  if (e2e_sabotage()) {
    e2e_sleep_until(e2e_ready_time + 0.5);
    e2e_interrupt_thread(ta);
  }
  pthread_join(ta, NULL);
  E2E_CHECK(accept_fd >= 0, "accept failed: %s", strerror(accept_errno));
  pthread_join(tc, NULL);

  E2E_CHECK(accept_time >= connect_time, "accept returned before the connect");
  E2E_CHECK(peer.sin_family == AF_INET && peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
                ntohs(peer.sin_port) == connector_port,
            "accepted peer %s:%u, want 127.0.0.1:%u", inet_ntoa(peer.sin_addr),
            ntohs(peer.sin_port), connector_port);
  E2E_CHECK(memcmp(got_hello, kHello, sizeof kHello) == 0, "hello payload differs");
  E2E_CHECK(memcmp(got_ack, kAck, sizeof kAck) == 0, "ack payload differs");
  E2E_CHECK(bound_port(listener) == port, "listener port changed from %u", port);
  int reuse = 0, acc = 0;
  socklen_t len = sizeof reuse;
  getsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, &len);
  len = sizeof acc;
  getsockopt(listener, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len);
  E2E_CHECK(reuse == 1 && acc == 1, "listener options lost (reuseaddr %d, listening %d)", reuse,
            acc);
  e2e_pass();
}
