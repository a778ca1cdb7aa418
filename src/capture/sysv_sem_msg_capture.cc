// Host side (keeper): see sysv_sem_msg_capture.h.
#include "capture/sysv_sem_msg_capture.h"

#include <sys/msg.h>
#include <sys/sem.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "base/hex.h"
#include "capture/sysvipc.h"

namespace vos::capture {

namespace {

// The caller defines it (sem.h says so).
union SemArg {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

image::IpcPerm perm_of(int32_t id, const ipc_perm& p) {
  image::IpcPerm out;
  out.id = id;
  out.key = p.__key;
  out.mode = p.mode & 0777;
  out.uid = p.uid;
  out.gid = p.gid;
  out.cuid = p.cuid;
  out.cgid = p.cgid;
  return out;
}

Result<image::SysvSem> read_semaphore_set(int32_t id) {
  semid_ds ds{};
  SemArg arg{};
  arg.buf = &ds;
  if (::semctl(id, 0, IPC_STAT, arg) != 0) {
    return sys_error("semctl IPC_STAT");
  }
  image::SysvSem s;
  s.perm = perm_of(id, ds.sem_perm);
  std::vector<unsigned short> values(ds.sem_nsems);
  arg.array = values.data();
  if (::semctl(id, 0, GETALL, arg) != 0) {
    return sys_error("semctl GETALL of {} semaphores", ds.sem_nsems);
  }
  s.values.assign(values.begin(), values.end());
  for (unsigned i = 0; i < ds.sem_nsems; ++i) {
    int pid = ::semctl(id, static_cast<int>(i), GETPID);
    if (pid < 0) {
      return sys_error("semctl GETPID of semaphore {}", i);
    }
    s.pids.push_back(pid);
  }
  return s;
}

Result<image::SysvMsgQueue> read_message_queue(int32_t id) {
  msqid_ds ds{};
  if (::msgctl(id, IPC_STAT, &ds) != 0) {
    return sys_error("msgctl IPC_STAT");
  }
  image::SysvMsgQueue q;
  q.perm = perm_of(id, ds.msg_perm);
  q.qbytes = ds.msg_qbytes;
  // No message is larger than all the queue holds.
  std::string buf(sizeof(long) + ds.__msg_cbytes + 1, '\0');
  for (msgqnum_t i = 0; i < ds.msg_qnum; ++i) {
    // MSG_COPY: the message at this position, copied, the queue untouched.
    ssize_t n = ::msgrcv(id, buf.data(), buf.size() - sizeof(long), static_cast<long>(i),
                         IPC_NOWAIT | MSG_COPY);
    if (n < 0) {
      if (errno == ENOSYS) {
        return sys_error("msgrcv MSG_COPY of message {} (a kernel built without "
                         "CONFIG_CHECKPOINT_RESTORE)",
                         i);
      }
      return sys_error("msgrcv MSG_COPY of message {}", i);
    }
    image::SysvMessage m;
    std::memcpy(&m.type, buf.data(), sizeof(long));
    m.data = to_hex(std::string_view(buf.data() + sizeof(long), static_cast<size_t>(n)));
    q.messages.push_back(std::move(m));
  }
  return q;
}

}  // namespace

Status capture_sysv_sem_msg(image::ProcessImage& img) {
  img.sysv_sem.clear();
  img.sysv_msg.clear();
  auto sems = read_sysvipc_sem();
  if (!sems) {
    return std::move(sems).error();
  }
  for (const auto& l : *sems) {
    auto s = read_semaphore_set(l.id);
    if (!s) {
      return std::move(s).error().context(fmt::format("System V semaphore set {}", l.id));
    }
    img.sysv_sem.push_back(std::move(*s));
  }
  auto msgs = read_sysvipc_msg();
  if (!msgs) {
    return std::move(msgs).error();
  }
  for (const auto& l : *msgs) {
    auto q = read_message_queue(l.id);
    if (!q) {
      return std::move(q).error().context(fmt::format("System V message queue {}", l.id));
    }
    img.sysv_msg.push_back(std::move(*q));
  }
  auto by_id = [](const auto& a, const auto& b) { return a.perm.id < b.perm.id; };
  std::sort(img.sysv_sem.begin(), img.sysv_sem.end(), by_id);
  std::sort(img.sysv_msg.begin(), img.sysv_msg.end(), by_id);
  return {};
}

}  // namespace vos::capture
