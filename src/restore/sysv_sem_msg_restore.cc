// Host side (restore): see sysv_sem_msg_restore.h.
#include "restore/sysv_sem_msg_restore.h"

#include <fcntl.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "base/hex.h"
#include "base/unique_fd.h"
#include "restore/ipc_create.h"

namespace vos::restore {

namespace {

constexpr const char* kSemNextId = "/proc/sys/kernel/sem_next_id";
constexpr const char* kMsgNextId = "/proc/sys/kernel/msg_next_id";
// Created owner-writable, so that the values and messages go in whatever the final mode; the
// final mode and owner are set last.
constexpr int kFillMode = 0600;

union SemArg {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

template <typename Object>
Status check_ids(const std::vector<Object>& list, const std::string& path, const char* what) {
  for (size_t i = 0; i < list.size(); ++i) {
    int32_t id = list[i].perm.id;
    if (id < 0 || (i > 0 && id <= list[i - 1].perm.id)) {
      return user_error("image {}: corrupt: System V {} {} appears twice or out of order", path,
                        what, id);
    }
  }
  return {};
}

void give_perm(ipc_perm& to, const image::IpcPerm& from) {
  to.uid = from.uid;
  to.gid = from.gid;
  to.mode = from.mode & 0777;
}

Status recreate_set(int next_id_fd, const image::SysvSem& s) {
  const auto& perm = s.perm;
  auto got = create_ipc_object(
      next_id_fd, kSemNextId, perm.id, perm.cuid, perm.cgid,
      [&] {
        return ::semget(perm.key, static_cast<int>(s.values.size()),
                        IPC_CREAT | IPC_EXCL | kFillMode);
      },
      [](int id) { ::semctl(id, 0, IPC_RMID); });
  if (!got) {
    return std::move(got).error().context(fmt::format(
        "semget of key {:#x}, {} semaphores", static_cast<uint32_t>(perm.key), s.values.size()));
  }
  std::vector<unsigned short> values(s.values.begin(), s.values.end());
  SemArg arg{};
  arg.array = values.data();
  if (::semctl(perm.id, 0, SETALL, arg) != 0) {
    return sys_error("semctl SETALL");
  }
  semid_ds ds{};
  arg.buf = &ds;
  if (::semctl(perm.id, 0, IPC_STAT, arg) != 0) {
    return sys_error("semctl IPC_STAT");
  }
  give_perm(ds.sem_perm, perm);
  if (::semctl(perm.id, 0, IPC_SET, arg) != 0) {
    return sys_error("giving it to owner {}:{}, mode {:03o}", perm.uid, perm.gid, perm.mode);
  }
  return {};
}

Status recreate_queue(int next_id_fd, const image::SysvMsgQueue& q) {
  const auto& perm = q.perm;
  auto got = create_ipc_object(
      next_id_fd, kMsgNextId, perm.id, perm.cuid, perm.cgid,
      [&] { return ::msgget(perm.key, IPC_CREAT | IPC_EXCL | kFillMode); },
      [](int id) { ::msgctl(id, IPC_RMID, nullptr); });
  if (!got) {
    return std::move(got).error().context(
        fmt::format("msgget of key {:#x}", static_cast<uint32_t>(perm.key)));
  }
  msqid_ds ds{};
  if (::msgctl(perm.id, IPC_STAT, &ds) != 0) {
    return sys_error("msgctl IPC_STAT");
  }
  // The limit first: the messages may fill more than the namespace's default (msgmnb).
  if (ds.msg_qbytes != q.qbytes) {
    ds.msg_qbytes = q.qbytes;
    if (::msgctl(perm.id, IPC_SET, &ds) != 0) {
      return sys_error("setting its limit to {} bytes (above msgmnb needs CAP_SYS_RESOURCE)",
                       q.qbytes);
    }
  }
  std::string buf;
  for (size_t i = 0; i < q.messages.size(); ++i) {
    const auto& m = q.messages[i];
    std::string text = from_hex(m.data);
    buf.assign(sizeof(long), '\0');
    long type = m.type;
    std::memcpy(buf.data(), &type, sizeof type);
    buf += text;
    if (::msgsnd(perm.id, buf.data(), text.size(), IPC_NOWAIT) != 0) {
      return sys_error("msgsnd of message {} ({} bytes, type {})", i, text.size(), m.type);
    }
  }
  give_perm(ds.msg_perm, perm);
  if (::msgctl(perm.id, IPC_SET, &ds) != 0) {
    return sys_error("giving it to owner {}:{}, mode {:03o}", perm.uid, perm.gid, perm.mode);
  }
  return {};
}

}  // namespace

Status check_sysv_sem_msg_restorable(const image::ProcessImage& p, const std::string& path) {
  if (auto st = check_ids(p.sysv_sem, path, "semaphore set"); !st) {
    return st;
  }
  if (auto st = check_ids(p.sysv_msg, path, "message queue"); !st) {
    return st;
  }
  for (const auto& s : p.sysv_sem) {
    if (s.values.empty() || s.values.size() > 65535) {
      return user_error("image {}: corrupt: System V semaphore set {} has {} semaphores", path,
                        s.perm.id, s.values.size());
    }
  }
  for (const auto& q : p.sysv_msg) {
    uint64_t bytes = 0;
    for (const auto& m : q.messages) {
      if (m.type <= 0 || m.data.size() % 2 != 0 || from_hex(m.data).size() * 2 != m.data.size()) {
        return user_error("image {}: corrupt: a message of System V message queue {}", path,
                          q.perm.id);
      }
      bytes += m.data.size() / 2;
    }
    if (bytes > q.qbytes) {
      return user_error(
          "image {}: corrupt: System V message queue {} holds {} bytes, above its "
          "limit of {}",
          path, q.perm.id, bytes, q.qbytes);
    }
  }
  for (auto [list_empty, file] :
       {std::pair{p.sysv_sem.empty(), kSemNextId}, std::pair{p.sysv_msg.empty(), kMsgNextId}}) {
    if (!list_empty && ::access(file, F_OK) != 0) {
      return sys_error(
          "restoring System V IPC needs {} (a kernel built with "
          "CONFIG_CHECKPOINT_RESTORE)",
          file);
    }
  }
  return {};
}

Status recreate_sysv_sem_msg(const image::ProcessImage& p) {
  // The program's IPC namespace is new, so every id is free; ascending, as the image lists them.
  if (!p.sysv_sem.empty()) {
    UniqueFd next_id(::open(kSemNextId, O_WRONLY | O_CLOEXEC));
    if (!next_id.valid()) {
      return sys_error("opening {} to give semaphore sets their ids", kSemNextId);
    }
    for (const auto& s : p.sysv_sem) {
      VOS_TRY(recreate_set(next_id.get(), s), "System V semaphore set {}", s.perm.id);
    }
  }
  if (!p.sysv_msg.empty()) {
    UniqueFd next_id(::open(kMsgNextId, O_WRONLY | O_CLOEXEC));
    if (!next_id.valid()) {
      return sys_error("opening {} to give message queues their ids", kMsgNextId);
    }
    for (const auto& q : p.sysv_msg) {
      VOS_TRY(recreate_queue(next_id.get(), q), "System V message queue {}", q.perm.id);
    }
  }
  return {};
}

}  // namespace vos::restore
