// Host side (restore): see sysv_shm_restore.h.
#include "restore/sysv_shm_restore.h"

#include <fcntl.h>
#include <sys/shm.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>

#include "base/unique_fd.h"
#include "image/sysv_shm_layout.h"
#include "restore/ipc_create.h"
#include "restore/restore.h"

namespace vos::restore {

namespace {

constexpr uint64_t kPage = 4096;
constexpr const char* kNextId = "/proc/sys/kernel/shm_next_id";

uint64_t page_round(uint64_t n) {
  return (n + kPage - 1) / kPage * kPage;
}

// Creates `seg` under its id, as its creator.
Result<int> create_segment(int next_id_fd, const image::SysvShm& seg) {
  auto got = create_ipc_object(
      next_id_fd, kNextId, seg.id, seg.cuid, seg.cgid,
      [&] {
        return ::shmget(seg.key, seg.size,
                        IPC_CREAT | IPC_EXCL | static_cast<int>(seg.mode & 0777));
      },
      [](int id) { ::shmctl(id, IPC_RMID, nullptr); });
  if (!got) {
    return std::move(got).error().context(
        fmt::format("shmget of key {:#x}, {} bytes", static_cast<uint32_t>(seg.key), seg.size));
  }
  return got;
}

Status fill_segment(const LoadedImage& img, int image_fd, const std::vector<int>& parent_fds,
                    const image::SysvShm& seg) {
  if (seg.pages.empty()) {
    return {};
  }
  void* at = ::shmat(seg.id, nullptr, 0);
  if (at == reinterpret_cast<void*>(-1)) {
    return sys_error("attaching it to write its contents");
  }
  auto* mem = static_cast<char*>(at);
  Status st;
  for (const auto& r : seg.pages) {
    int fd = r.image == 0 ? image_fd : parent_fds[r.image - 1];
    uint64_t from =
        (r.image == 0 ? img.pages.base : img.parents[r.image - 1].pages.base) + r.offset;
    uint64_t len = r.npages * kPage;
    for (uint64_t done = 0; done < len && st;) {
      ssize_t n = ::pread(fd, mem + r.vaddr + done, len - done, static_cast<off_t>(from + done));
      if (n <= 0) {
        st = Error(n == 0 ? EIO : errno,
                   fmt::format("reading its pages at offset {:#x} from the image", r.vaddr + done));
      }
      done += n > 0 ? static_cast<uint64_t>(n) : 0;
    }
    if (!st) {
      break;
    }
  }
  ::shmdt(at);
  return st;
}

}  // namespace

Status check_sysv_shm_restorable(const LoadedImage& img) {
  const auto& p = img.proc;
  if (p.sysv_shm.empty()) {
    return {};
  }
  const std::string& path = img.reader.path();
  for (size_t i = 0; i < p.sysv_shm.size(); ++i) {
    const auto& s = p.sysv_shm[i];
    if (s.id < 0 || (i > 0 && s.id <= p.sysv_shm[i - 1].id)) {
      return user_error("image {}: corrupt: System V segment {} appears twice or out of order",
                        path, s.id);
    }
    if (s.size == 0) {
      return user_error("image {}: corrupt: System V segment {} has size 0", path, s.id);
    }
    for (const auto& r : s.pages) {
      uint64_t data = r.image == 0                    ? img.pages_size
                      : r.image <= img.parents.size() ? img.parents[r.image - 1].pages_size
                                                      : 0;
      if (r.image > img.parents.size() || r.vaddr % kPage != 0 || r.vaddr > page_round(s.size) ||
          r.npages > (page_round(s.size) - r.vaddr) / kPage || r.offset > data ||
          r.npages * kPage > data - r.offset) {
        return user_error(
            "image {}: corrupt: System V segment {}: page run at {:#x} outside the segment or "
            "data",
            path, s.id, r.vaddr);
      }
    }
  }
  auto attachments = image::shm_attachments(p);
  if (!attachments) {
    return std::move(attachments).error().context(fmt::format("image {}", path));
  }
  for (const auto& s : p.sysv_shm) {
    if (s.removed && std::none_of(attachments->begin(), attachments->end(),
                                  [&](const image::ShmAttachment& a) { return a.id == s.id; })) {
      return user_error(
          "image {}: corrupt: System V segment {} was removed but is attached nowhere", path, s.id);
    }
  }
  // Only a new, empty IPC namespace has every id free (the kernel may have none at all).
  if (::access("/proc/self/ns/ipc", F_OK) != 0) {
    return sys_error("restoring System V shared memory needs IPC namespaces (CONFIG_IPC_NS)");
  }
  if (::access(kNextId, F_OK) != 0) {
    return sys_error(
        "restoring System V shared memory needs {} (a kernel built with "
        "CONFIG_CHECKPOINT_RESTORE)",
        kNextId);
  }
  return {};
}

Status recreate_sysv_shm(const LoadedImage& img, int image_fd, const std::vector<int>& parent_fds) {
  const auto& p = img.proc;
  if (p.sysv_shm.empty()) {
    return {};
  }
  // The program's IPC namespace is new, so every id is free; ascending, as the image lists them.
  UniqueFd next_id(::open(kNextId, O_WRONLY | O_CLOEXEC));
  if (!next_id.valid()) {
    return sys_error("opening {} to give System V segments their ids", kNextId);
  }
  for (const auto& seg : p.sysv_shm) {
    auto id = create_segment(next_id.get(), seg);
    if (!id) {
      return std::move(id).error().context(fmt::format("System V segment {}", seg.id));
    }
    shmid_ds ds{};
    if (::shmctl(seg.id, IPC_STAT, &ds) != 0) {
      return sys_error("System V segment {}: IPC_STAT", seg.id);
    }
    if (ds.shm_perm.uid != seg.uid || ds.shm_perm.gid != seg.gid) {
      ds.shm_perm.uid = seg.uid;
      ds.shm_perm.gid = seg.gid;
      if (::shmctl(seg.id, IPC_SET, &ds) != 0) {
        return sys_error("System V segment {}: giving it to owner {}:{}", seg.id, seg.uid, seg.gid);
      }
    }
    VOS_TRY(fill_segment(img, image_fd, parent_fds, seg), "System V segment {}", seg.id);
    if (seg.locked && ::shmctl(seg.id, SHM_LOCK, nullptr) != 0) {
      return sys_error("System V segment {}: SHM_LOCK", seg.id);
    }
  }
  return {};
}

}  // namespace vos::restore
