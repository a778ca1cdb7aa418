// Host side (vos restore).
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "fds/fd_kind.h"
#include "fds/file_locks.h"
#include "image/page_reader.h"
#include "restore/restore.h"
#include "restore/sysv_sem_msg_restore.h"
#include "restore/sysv_shm_restore.h"

namespace vos::restore {

Result<ParentPages> open_parent(const std::string& child, const image::ParentImage& ref) {
  std::filesystem::path recorded(ref.path);
  std::filesystem::path beside = std::filesystem::path(child).parent_path() / recorded.filename();
  std::error_code ec;
  const auto& where = std::filesystem::exists(recorded, ec) ? recorded : beside;
  auto reader = image::ImageReader::open(where.string());
  if (!reader) {
    return std::move(reader).error().context(
        fmt::format("parent image {} (looked for at {} and {})", recorded.filename().string(),
                    ref.path, beside.string()));
  }
  auto meta = reader->read_section(abi::SectionType::kMeta);
  if (!meta) {
    return std::move(meta).error();
  }
  auto proc = image::process_from_json(*meta);
  if (!proc) {
    return std::move(proc).error().context(fmt::format("parent image {}", where.string()));
  }
  if (proc->image_id != ref.image_id) {
    return user_error("parent image {} is not the one this image was built on (id {}, expected {})",
                      where.string(), proc->image_id, ref.image_id);
  }
  auto pages = image::PageReader::open(*reader);
  if (!pages) {
    return std::move(pages).error().context(fmt::format("parent image {}", where.string()));
  }
  uint64_t logical = pages->logical_size();
  auto sums = image::read_page_checksums(*reader);
  if (!sums) {
    return std::move(sums).error().context(fmt::format("parent image {}", where.string()));
  }
  return ParentPages{std::move(*reader), logical, {}, std::move(*sums)};
}

bool LoadedImage::restorer_checks_pages() const {
  if (lazy || !page_sums) {
    return false;
  }
  for (const auto& p : parents) {
    if (!p.page_sums) {
      return false;
    }
  }
  return true;
}

Result<LoadedImage> load_image(const std::string& path) {
  auto reader = image::ImageReader::open(path);
  if (!reader) {
    return std::move(reader).error();
  }
  // The pages section is verified by the keeper while the new process loads it (verify_pages);
  // the program is only let run once that check passed.
  auto meta = reader->read_section(abi::SectionType::kMeta);
  if (!meta) {
    return std::move(meta).error();
  }
  auto proc = image::process_from_json(*meta);
  if (!proc) {
    return std::move(proc).error().context(fmt::format("image {}", path));
  }
  std::string blobs;
  if (reader->find(abi::SectionType::kBlobs) != nullptr) {
    auto b = reader->read_section(abi::SectionType::kBlobs);
    if (!b) {
      return std::move(b).error();
    }
    blobs = std::move(*b);
  }
  // Checks the frame index of a compressed image now, before anything is created.
  auto pages = image::PageReader::open(*reader);
  if (!pages) {
    return std::move(pages).error();
  }
  auto sums = image::read_page_checksums(*reader);
  if (!sums) {
    return std::move(sums).error();
  }
  LoadedImage img{
      {}, std::move(*reader), std::move(*proc), std::move(blobs), pages->logical_size(), {}, {}};
  img.page_sums = std::move(*sums);
  for (const auto& ref : img.proc.parents) {
    auto parent = open_parent(path, ref);
    if (!parent) {
      return std::move(parent).error().context(fmt::format("image {}", path));
    }
    img.parents.push_back(std::move(*parent));
  }
  return img;
}

Status verify_pages(const LoadedImage& img) {
  if (const auto* pages = img.reader.find(abi::SectionType::kPages)) {
    VOS_TRY(img.reader.verify_section(*pages), "image {}", img.reader.path());
  }
  for (const auto& p : img.parents) {
    if (const auto* pages = p.reader.find(abi::SectionType::kPages)) {
      VOS_TRY(p.reader.verify_section(*pages), "parent image {}", p.reader.path());
    }
  }
  return {};
}

namespace {

Status check_blob(const LoadedImage& img, const image::BlobRef& ref, const char* what) {
  if (ref.offset > img.blobs.size() || ref.size > img.blobs.size() - ref.offset) {
    return user_error("image {}: corrupt: {} refers outside the blobs section", img.reader.path(),
                      what);
  }
  return {};
}

fds::RestorePolicy restore_policy(const LoadedImage& img, fds::RestorePolicy::Files files) {
  fds::RestorePolicy policy = img.policy;
  policy.files = files;
  policy.proc = &img.proc;
  policy.blobs = img.blobs;
  return policy;
}

}  // namespace

namespace {

Status check_process_restorable(const LoadedImage& img, const image::ProcessImage& p,
                                fds::RestorePolicy::Files files) {
  if (p.zombie) {
    return {};
  }
  uint64_t pages_size = img.pages_size;
  if (p.threads.empty()) {
    return user_error("image {}: corrupt: no threads", img.reader.path());
  }
  if (p.pid <= 1) {
    return user_error("image {}: corrupt: pid {}", img.reader.path(), p.pid);
  }
  VOS_TRY(check_blob(img, p.auxv, "auxv"), "process");
  for (const auto& s : p.shared_pending) {
    VOS_TRY(check_blob(img, s, "pending signal"), "process");
  }
  for (const auto& t : p.threads) {
    VOS_TRY(check_blob(img, t.regs, "registers"), "thread {}", t.tid);
    VOS_TRY(check_blob(img, t.xstate, "FPU state"), "thread {}", t.tid);
    for (const auto& s : t.pending) {
      VOS_TRY(check_blob(img, s, "pending signal"), "thread {}", t.tid);
    }
  }
  int32_t last_id = -1;
  for (const auto& t : p.posix_timers) {
    // Ascending: without PR_TIMER_CREATE_RESTORE_IDS the ids are reached in order.
    if (t.id <= last_id) {
      return user_error("image {}: corrupt: POSIX timer {} out of order", img.reader.path(), t.id);
    }
    last_id = t.id;
    bool to_thread = (t.notify & SIGEV_THREAD_ID) != 0;
    if (to_thread && std::none_of(p.threads.begin(), p.threads.end(),
                                  [&](const image::ThreadState& th) { return th.tid == t.tid; })) {
      return user_error(
          "image {}: corrupt: POSIX timer {} signals thread {}, which it does not have",
          img.reader.path(), t.id, t.tid);
    }
  }
  for (const auto& a : p.areas) {
    if (a.start >= a.end || a.start % 4096 != 0 || a.end % 4096 != 0) {
      return user_error("image {}: corrupt: bad mapping {:#x}-{:#x}", img.reader.path(), a.start,
                        a.end);
    }
    for (const auto& r : a.pages) {
      if (r.image > img.parents.size()) {
        return user_error("image {}: corrupt: page run at {:#x} refers to parent {} of {}",
                          img.reader.path(), r.vaddr, r.image, img.parents.size());
      }
      uint64_t size = r.image == 0 ? pages_size : img.parents[r.image - 1].pages_size;
      if (r.vaddr < a.start || r.npages > (a.end - r.vaddr) / 4096 || r.offset > size ||
          r.npages * 4096 > size - r.offset) {
        return user_error("image {}: corrupt: page run at {:#x} outside its mapping or data",
                          img.reader.path(), r.vaddr);
      }
    }
    if (a.kind == image::AreaKind::kFile) {
      struct stat st {};
      if (::stat(a.name.c_str(), &st) != 0) {
        return sys_error("file {} mapped by the program at {:#x} is gone", a.name, a.start);
      }
    }
    if (a.kind == image::AreaKind::kDeletedFile &&
        std::none_of(p.fds.begin(), p.fds.end(), [&](const image::FdState& f) {
          return f.fd == a.memfd && f.deleted && f.ino == a.ino;
        })) {
      return user_error(
          "image {}: corrupt: mapping {:#x} of deleted file {} names fd {}, which "
          "does not hold it",
          img.reader.path(), a.start, a.name, a.memfd);
    }
  }
  for (const auto& a : p.areas) {
    if (!a.locks.empty()) {  // flock locks kept by a mapping alone (a JVM's hsperfdata file)
      image::FdState held;
      held.path = a.name;
      held.locks = a.locks;
      VOS_TRY(fds::check_locks_free(held), "image {}: mapping at {:#x}", img.reader.path(),
              a.start);
    }
  }
  fds::RestorePolicy policy = restore_policy(img, files);
  policy.proc = &p;
  for (const auto& f : p.fds) {
    VOS_TRY(check_blob(img, f.data, "fd data"), "fd {}", f.fd);
    if (f.dup_of >= 0) {
      continue;
    }
    auto kind = fds::handler_of(f);
    if (!kind) {
      return std::move(kind).error();
    }
    VOS_TRY((*kind)->check_restorable(f, policy), "image {}", img.reader.path());
    VOS_TRY(fds::check_locks_free(f), "image {}", img.reader.path());
  }
  return {};
}

}  // namespace

Status check_restorable(const LoadedImage& img, fds::RestorePolicy::Files files) {
  VOS_TRY(check_process_restorable(img, img.proc, files), "process {}", img.proc.pid);
  VOS_TRY(check_sysv_shm_restorable(img), "System V shared memory");
  if (auto st = check_sysv_sem_msg_restorable(img.proc, img.reader.path()); !st) {
    return st;
  }
  for (const auto& q : img.proc.processes) {
    if (!q.processes.empty() || q.pid <= 1) {
      return user_error("image {}: corrupt: process {} in the tree", img.reader.path(), q.pid);
    }
    VOS_TRY(check_process_restorable(img, q, files), "process {}", q.pid);
  }
  return {};
}

Status prepare_restore(const LoadedImage& img, fds::RestorePolicy::Files files) {
  fds::RestorePolicy policy = restore_policy(img, files);
  auto prepare = [&](const image::ProcessImage& p) -> Status {
    policy.proc = &p;
    for (const auto& f : p.fds) {
      // A description the tree's processes share is brought back once.
      if (f.dup_of >= 0 ||
          (f.tree_desc != 0 && &p != &img.proc &&
           std::any_of(img.proc.fds.begin(), img.proc.fds.end(),
                       [&](const image::FdState& o) { return o.tree_desc == f.tree_desc; }))) {
        continue;
      }
      if (const auto* kind = fds::handler_for(f.kind)) {
        VOS_TRY(kind->prepare(f, policy), "--files=rewind");
      }
    }
    return {};
  };
  VOS_TRY(prepare(img.proc), "process {}", img.proc.pid);
  for (const auto& q : img.proc.processes) {
    VOS_TRY(prepare(q), "process {}", q.pid);
  }
  return {};
}

Status check_lazy_restorable() {
  UniqueFd uffd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (!uffd.valid()) {
    return sys_error(
        "--lazy: userfaultfd (for a user other than root it needs "
        "vm.unprivileged_userfaultfd=1); restore without --lazy");
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
                 UFFD_FEATURE_EVENT_UNMAP;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0) {
    return Error(errno == EPERM ? EPERM : errno,
                 "--lazy: the kernel tells the keeper of the program's forks only with "
                 "CAP_SYS_PTRACE (root): without it, a process the program forks before its "
                 "memory is all in would read zeros for the pages not copied yet; restore "
                 "without --lazy");
  }
  return {};
}

}  // namespace vos::restore
