// Unit tests of System V semaphore sets and message queues: captured, removed and recreated in
// an IPC namespace of the test's own, they come back under their ids with their values and
// messages (binary ones, in order), owners and modes, and the image's metadata keeps them.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "base/hex.h"
#include "capture/sysv_sem_msg_capture.h"
#include "image/process_model.h"
#include "restore/sysv_sem_msg_restore.h"

namespace vos {
namespace {

union SemArg {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

struct Message {
  long type;
  char text[64];
};

void send(int q, long type, const std::string& text) {
  Message m{};
  m.type = type;
  std::memcpy(m.text, text.data(), text.size());
  ASSERT_EQ(::msgsnd(q, &m, text.size(), IPC_NOWAIT), 0) << std::strerror(errno);
}

// Takes the next message of `type` (0: any), as the program would after a restore.
std::string receive(int q, long type) {
  Message m{};
  ssize_t n = ::msgrcv(q, &m, sizeof m.text, type, IPC_NOWAIT);
  return n < 0 ? "error: " + std::string(std::strerror(errno))
               : std::to_string(m.type) + ":" + std::string(m.text, static_cast<size_t>(n));
}

// The body, on a thread of its own: unshare(CLONE_NEWIPC) changes the caller's thread only, and
// /proc/sysvipc shows the namespace of the thread that opens it.
void round_trip() {
  ASSERT_EQ(::unshare(CLONE_NEWIPC), 0) << std::strerror(errno);
  int unused = ::semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);  // ids need not start at 0
  int set = ::semget(0x5eed, 3, IPC_CREAT | 0640);
  ASSERT_GE(unused, 0);
  ASSERT_GE(set, 0);
  ASSERT_EQ(::semctl(unused, 0, IPC_RMID), 0);
  unsigned short values[3] = {5, 0, 32767};
  SemArg arg{};
  arg.array = values;
  ASSERT_EQ(::semctl(set, 0, SETALL, arg), 0);
  int q = ::msgget(IPC_PRIVATE, IPC_CREAT | 0604);
  ASSERT_GE(q, 0);
  send(q, 2, std::string("first\0with a zero", 17));
  send(q, 1, "second");
  send(q, 2, "third");
  msqid_ds ds{};
  ASSERT_EQ(::msgctl(q, IPC_STAT, &ds), 0);
  ds.msg_qbytes = 1000;  // below the default: kept
  ASSERT_EQ(::msgctl(q, IPC_SET, &ds), 0);

  image::ProcessImage img;
  auto st = capture::capture_sysv_sem_msg(img);
  ASSERT_TRUE(st) << st.error().describe();
  ASSERT_EQ(img.sysv_sem.size(), 1u);
  ASSERT_EQ(img.sysv_msg.size(), 1u);
  EXPECT_EQ(img.sysv_sem[0].perm.id, set);
  EXPECT_EQ(img.sysv_sem[0].perm.key, 0x5eed);
  EXPECT_EQ(img.sysv_sem[0].perm.mode, 0640u);
  EXPECT_EQ(img.sysv_sem[0].values, (std::vector<uint16_t>{5, 0, 32767}));
  EXPECT_EQ(img.sysv_msg[0].qbytes, 1000u);
  ASSERT_EQ(img.sysv_msg[0].messages.size(), 3u);
  EXPECT_EQ(img.sysv_msg[0].messages[0].data, to_hex(std::string("first\0with a zero", 17)));
  // MSG_COPY left the queue as it was.
  ASSERT_EQ(::msgctl(q, IPC_STAT, &ds), 0);
  EXPECT_EQ(ds.msg_qnum, 3u);

  auto back = image::process_from_json(image::to_json(img).dump());
  ASSERT_TRUE(back) << back.error().describe();
  ASSERT_TRUE(restore::check_sysv_sem_msg_restorable(*back, "test"));
  // A fresh namespace, as a restore has.
  ASSERT_EQ(::unshare(CLONE_NEWIPC), 0) << std::strerror(errno);
  st = restore::recreate_sysv_sem_msg(*back);
  ASSERT_TRUE(st) << st.error().describe();

  unsigned short again[3] = {};
  arg.array = again;
  ASSERT_EQ(::semctl(set, 0, GETALL, arg), 0) << std::strerror(errno);
  EXPECT_EQ(again[0], 5);
  EXPECT_EQ(again[1], 0);
  EXPECT_EQ(again[2], 32767);
  EXPECT_EQ(::semget(0x5eed, 0, 0), set);  // found by its key too
  semid_ds sds{};
  arg.buf = &sds;
  ASSERT_EQ(::semctl(set, 0, IPC_STAT, arg), 0);
  EXPECT_EQ(sds.sem_perm.mode & 0777, 0640u);
  ASSERT_EQ(::msgctl(q, IPC_STAT, &ds), 0) << std::strerror(errno);
  EXPECT_EQ(ds.msg_qbytes, 1000u);
  EXPECT_EQ(ds.msg_perm.mode & 0777, 0604u);
  EXPECT_EQ(receive(q, 1), "1:second");
  EXPECT_EQ(receive(q, 0), "2:" + std::string("first\0with a zero", 17));
  EXPECT_EQ(receive(q, 0), "2:third");
  EXPECT_EQ(receive(q, 0), "error: " + std::string(std::strerror(ENOMSG)));
}

TEST(SysvSemMsg, RoundTripInANamespaceOfItsOwn) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root: unshare(CLONE_NEWIPC) and the next-id files";
  }
  std::thread t(round_trip);
  t.join();
}

TEST(SysvSemMsg, CorruptImagesAreRefused) {
  image::ProcessImage p;
  image::SysvSem s;
  s.perm.id = 3;
  s.values = {1};
  p.sysv_sem = {s, s};  // twice
  EXPECT_FALSE(restore::check_sysv_sem_msg_restorable(p, "x"));
  p.sysv_sem = {image::SysvSem{}};  // no semaphores
  EXPECT_FALSE(restore::check_sysv_sem_msg_restorable(p, "x"));
  p.sysv_sem.clear();
  image::SysvMsgQueue q;
  q.qbytes = 2;
  q.messages = {{1, "616263"}};  // 3 bytes in a queue of 2
  p.sysv_msg = {q};
  EXPECT_FALSE(restore::check_sysv_sem_msg_restorable(p, "x"));
  p.sysv_msg[0].qbytes = 3;
  EXPECT_TRUE(restore::check_sysv_sem_msg_restorable(p, "x"));
  p.sysv_msg[0].messages[0].type = 0;  // types are > 0
  EXPECT_FALSE(restore::check_sysv_sem_msg_restorable(p, "x"));
}

}  // namespace
}  // namespace vos
