// e2e case: socketpairs whose both ends the process holds (stream, seqpacket, datagram), with
// messages waiting in both directions through the checkpoint, one end of the datagram pair shut
// down for writing. After the restore: every queued message arrives in order with its boundaries
// and bytes, the ends still talk to each other, and the shut-down end still refuses to send.
#include <sys/socket.h>

#include "e2e_common.h"

static const int kTypes[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
static const char* kNames[] = {"stream", "seqpacket", "dgram"};

static void message(char* out, size_t size, int type, int dir, int k) {
  snprintf(out, size, "%s %s message %d %*s", kNames[type], dir ? "back" : "forth", k, k * 3, "");
}

int main(int argc, char** argv) {
  e2e_init(argc, argv);
  int sv[3][2];
  for (int t = 0; t < 3; ++t) {
    if (socketpair(AF_UNIX, kTypes[t], 0, sv[t]) != 0) {
      e2e_fail("socketpair %s: %s", kNames[t], strerror(errno));
    }
    for (int k = 0; k < 5; ++k) {
      for (int dir = 0; dir < 2; ++dir) {
        char m[128];
        message(m, sizeof m, t, dir, k);
        if (send(sv[t][dir], m, strlen(m), 0) != (ssize_t)strlen(m)) {
          e2e_fail("send: %s", strerror(errno));
        }
      }
    }
  }
  shutdown(sv[2][1], SHUT_WR);
  e2e_ready();
  if (e2e_sabotage()) {
    char junk[128];
    recv(sv[1][1], junk, sizeof junk, 0);  // one message gone
  }
  e2e_sleep_until(e2e_now() + 1.0);
  for (int t = 0; t < 3; ++t) {
    for (int dir = 0; dir < 2; ++dir) {
      if (t == 0) {  // a stream: all of it at once, no boundaries to keep
        char want[1024] = "", got[1024] = {0}, m[128];
        for (int k = 0; k < 5; ++k) {
          message(m, sizeof m, t, dir, k);
          strcat(want, m);
        }
        size_t have = 0;
        while (have < strlen(want)) {
          ssize_t n = recv(sv[t][1 - dir], got + have, strlen(want) - have, MSG_DONTWAIT);
          if (n <= 0) {
            e2e_fail("stream %d: %zu of %zu bytes", dir, have, strlen(want));
          }
          have += (size_t)n;
        }
        if (strcmp(want, got) != 0) {
          e2e_fail("stream %d: bytes differ", dir);
        }
        continue;
      }
      for (int k = 0; k < 5; ++k) {
        char want[128], got[256];
        message(want, sizeof want, t, dir, k);
        ssize_t n = recv(sv[t][1 - dir], got, sizeof got, MSG_DONTWAIT);
        if (n != (ssize_t)strlen(want) || memcmp(want, got, (size_t)n) != 0) {
          e2e_fail("%s %s message %d: got %zd bytes", kNames[t], dir ? "back" : "forth", k, n);
        }
      }
    }
    char probe[8];
    if (recv(sv[t][0], probe, sizeof probe, MSG_DONTWAIT) >= 0 || errno != EAGAIN) {
      e2e_fail("%s: more queued than was sent", kNames[t]);
    }
  }
  // Still a pair: what one end sends now reaches the other.
  for (int t = 0; t < 2; ++t) {
    char got[16] = {0};
    if (send(sv[t][0], "again", 5, 0) != 5 || recv(sv[t][1], got, sizeof got, 0) != 5 ||
        strcmp(got, "again") != 0) {
      e2e_fail("%s: the ends no longer talk", kNames[t]);
    }
  }
  if (send(sv[2][1], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
    e2e_fail("dgram: the end shut down for writing sends again");
  }
  e2e_pass();
}
