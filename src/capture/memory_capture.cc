// Host side (keeper). The address space: every mapping with its protection and backing, and the
// pages only the process has (anonymous, or private copies of file pages). Pages that were never
// touched, and file pages that are unchanged, are not stored. A mapping of a deleted file is
// mapped again from the fd that holds it (whose content the image keeps), so that the two stay
// one file.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <set>

#include "capture/capture_context.h"
#include "capture/proc_files.h"
#include "capture/sysv_shm_capture.h"
#include "fds/file_locks.h"

namespace vos::capture {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool deleted_file(const MapsEntry& m) {
  return names_deleted_file(m.name);
}

image::AreaKind classify(const MapsEntry& m) {
  using image::AreaKind;
  if (m.name == "[vdso]") {
    return AreaKind::kVdso;
  }
  if (m.name == "[vvar]") {
    return AreaKind::kVvar;
  }
  if (m.name == "[vvar_vclock]") {
    return AreaKind::kVvarVclock;
  }
  if (m.name == "[vsyscall]") {
    return AreaKind::kVsyscall;
  }
  if (names_memfd(m.name)) {
    return AreaKind::kMemfd;  // shared or private, mapped from the restored memfd
  }
  if (is_sysv_shm_mapping(m)) {
    return AreaKind::kSysvShm;
  }
  if (m.shared && (starts_with(m.name, "/dev/zero") || m.name.empty())) {
    return AreaKind::kSharedAnon;
  }
  if (deleted_file(m)) {
    return AreaKind::kDeletedFile;
  }
  if (starts_with(m.name, "/")) {
    return AreaKind::kFile;
  }
  return AreaKind::kAnon;
}

// Deleted files the program holds open, by device and inode (what /proc/PID/maps shows).
using HeldFiles = std::set<std::pair<dev_t, uint64_t>>;

HeldFiles held_deleted_files(pid_t pid) {
  HeldFiles held;
  std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return held;
  }
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    std::string fd = dir + "/" + e->d_name;
    auto link = read_link(fd);
    struct stat st {};
    if (link && ends_with(*link, " (deleted)") && ::stat(fd.c_str(), &st) == 0 &&
        S_ISREG(st.st_mode)) {
      held.insert({st.st_dev, st.st_ino});
    }
  }
  ::closedir(d);
  return held;
}

bool held(const HeldFiles& files, const MapsEntry& m) {
  return files.count({makedev(m.dev_major, m.dev_minor), m.ino}) != 0;
}

Status check_area(const MapsEntry& m, const HeldFiles& files) {
  if (is_sysv_shm_mapping(m)) {
    return {};  // (sysv_shm_capture.cc checks attachments)
  }
  // (Shared, such a mapping is memory only its mappers reach, as a POSIX semaphore's after
  // sem_unlink: kept as shared memory, see plan_memory.)
  if (deleted_file(m) && !held(files, m) && !m.shared) {
    return user_error(
        "mapping {:#x}-{:#x}: file {} was deleted, and no fd of the program holds "
        "it: not supported yet",
        m.start, m.end, m.name);
  }
  if (starts_with(m.name, "/dev/") && !starts_with(m.name, "/dev/zero") &&
      !starts_with(m.name, "/dev/shm/")) {
    return user_error("mapping {:#x}-{:#x}: device mapping {} is not supported", m.start, m.end,
                      m.name);
  }
  return {};
}

}  // namespace

bool names_memfd(const std::string& name) {
  return starts_with(name, "/memfd:");
}

bool names_deleted_file(const std::string& name) {
  return starts_with(name, "/") && !names_memfd(name) && !starts_with(name, "/dev/zero") &&
         !starts_with(name, "/SYSV") && ends_with(name, " (deleted)");
}

Status read_memory(const CaptureContext& ctx, uint64_t addr, void* out, size_t size) {
  char* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = ::pread(ctx.mem_fd, p, size, static_cast<off_t>(addr));
    if (n <= 0) {
      return Error(n == 0 ? EIO : errno,
                   fmt::format("reading memory of process {} at {:#x}", ctx.pid, addr));
    }
    p += n;
    addr += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return {};
}

void precheck_memory(pid_t pid, bool own_ipc_namespace, Obstacles& obstacles) {
  auto maps = read_maps(pid);
  if (!maps) {
    obstacles.add(maps.error());
    return;
  }
  HeldFiles files = held_deleted_files(pid);
  for (const auto& m : *maps) {
    if (auto st = check_area(m, files); !st) {
      obstacles.add(st.error());
    }
  }
  precheck_sysv_ipc(*maps, own_ipc_namespace, obstacles);
}

// VmFlags of each mapping, keyed by start address (only the flags that decide how it is read).
Result<std::map<uint64_t, std::string>> read_vm_flags(pid_t pid) {
  auto text = read_text_file(fmt::format("/proc/{}/smaps", pid));
  if (!text) {
    return std::move(text).error();
  }
  std::map<uint64_t, std::string> out;
  uint64_t current = 0;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t eol = text->find('\n', pos);
    std::string line = text->substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    pos = eol == std::string::npos ? text->size() : eol + 1;
    if (line.rfind("VmFlags:", 0) == 0) {
      out[current] = line.substr(8) + " ";
    } else if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
               line.find('-') != std::string::npos && line.find(':') > line.find(' ')) {
      current = std::strtoull(line.c_str(), nullptr, 16);
    }
  }
  return out;
}

Status plan_memory(CaptureContext& ctx) {
  auto maps = read_maps(ctx.pid);
  if (!maps) {
    return std::move(maps).error();
  }
  // Frozen, the fds are captured first; a pre-copy's plan (not frozen) asks the program's own.
  HeldFiles files;
  if (ctx.session == nullptr) {
    files = held_deleted_files(ctx.pid);
  }
  for (const auto& fd : ctx.img.fds) {
    if (fd.deleted) {
      files.insert({static_cast<dev_t>(fd.dev), fd.ino});
    }
  }
  for (const auto& m : *maps) {
    VOS_TRY(check_area(m, files), "process {}", ctx.pid);
    image::MemoryArea a;
    a.start = m.start;
    a.end = m.end;
    a.prot = (m.r ? PROT_READ : 0) | (m.w ? PROT_WRITE : 0) | (m.x ? PROT_EXEC : 0);
    a.shared = m.shared;
    a.kind = classify(m);
    a.name = m.name;
    a.file_offset = m.offset;
    a.dev = (m.dev_major << 8) | m.dev_minor;
    a.ino = m.ino;
    a.growsdown = m.name == "[stack]";
    if (a.kind == image::AreaKind::kSysvShm) {
      a.shm_id = static_cast<int32_t>(m.ino);  // the kernel numbers a segment's inode by its id
    }
    AreaPlan plan;
    if (a.kind == image::AreaKind::kDeletedFile) {
      for (const auto& fd : ctx.img.fds) {
        if (fd.deleted && fd.dup_of < 0 && fd.ino == m.ino &&
            fd.dev == makedev(m.dev_major, m.dev_minor)) {
          a.memfd = fd.fd;
          break;
        }
      }
      if (a.memfd < 0) {
        // Shared (check_area refused it private) and reached through no name or descriptor:
        // memory like any shared memory (a POSIX semaphore, sem_open then sem_unlink). Restored
        // as shared anonymous memory with the same pages.
        a.kind = image::AreaKind::kSharedAnon;
        plan.store_all = true;
      }
    }
    if (a.kind == image::AreaKind::kMemfd) {
      for (const auto& fd : ctx.img.fds) {
        if (fd.kind == image::FdKind::kMemfd && fd.ino == m.ino) {
          a.memfd = fd.fd;
          break;
        }
      }
      if (a.memfd < 0) {
        // No fd keeps the memfd: its pages are the only copy, shared or private.
        a.kind = a.shared ? image::AreaKind::kSharedAnon : image::AreaKind::kAnon;
        plan.store_all = true;
      }
    }
    // (A System V segment's pages are stored once, with the segment: sysv_shm_capture.cc.)
    plan.stores_pages = a.kind == image::AreaKind::kAnon ||
                        a.kind == image::AreaKind::kSharedAnon ||
                        (a.kind == image::AreaKind::kFile && !a.shared) ||
                        (a.kind == image::AreaKind::kMemfd && !a.shared) ||
                        (a.kind == image::AreaKind::kDeletedFile && !a.shared);
    // Private anonymous memory, whose own pages the kernel reports as written. Not private
    // file (or memfd) mappings: a written page discarded with MADV_DONTNEED reads the file's
    // data again, but the kernel leaves a write-protect marker in its place, so the page is
    // reported neither as written nor as absent, and an incremental image would keep its old
    // private copy. Those, and memory read in full each time (shared, or a memfd nothing else
    // keeps), are stored from their present private pages at every checkpoint.
    plan.trackable = a.kind == image::AreaKind::kAnon && !a.shared && !plan.store_all;
    // A copy-on-write snapshot (a clone of the process) does not freeze shared memory, and
    // does not have mappings marked do-not-copy or wipe-on-fork: those are read while frozen.
    // Flags come from before the freeze (smaps is slow to read); a mapping that appeared since
    // is read while frozen, and check_snapshot() catches flags that changed meanwhile.
    auto vm = ctx.vm_flags.find(m.start);
    if (vm != ctx.vm_flags.end()) {
      static const std::pair<const char*, uint32_t> kAdvice[] = {
          {" hg ", image::kAdviceHugePage},   {" nh ", image::kAdviceNoHugePage},
          {" dc ", image::kAdviceDontFork},   {" dd ", image::kAdviceDontDump},
          {" wf ", image::kAdviceWipeOnFork}, {" mg ", image::kAdviceMergeable}};
      for (const auto& [flag, bit] : kAdvice) {
        if (vm->second.find(flag) != std::string::npos) {
          a.advice |= bit;
        }
      }
    }
    plan.read_while_frozen = a.shared || a.kind == image::AreaKind::kSharedAnon ||
                             vm == ctx.vm_flags.end() ||
                             vm->second.find(" dc ") != std::string::npos ||
                             vm->second.find(" wf ") != std::string::npos;
    if (a.kind == image::AreaKind::kFile) {
      // Locks kept by this mapping's open file description, on the first mapping of the file.
      std::string key = fds::lock_dev_ino(makedev(m.dev_major, m.dev_minor), m.ino);
      for (auto it = ctx.mapped_locks.begin(); it != ctx.mapped_locks.end();) {
        if (it->dev_ino == key) {
          a.locks.push_back(it->lock);
          it = ctx.mapped_locks.erase(it);
        } else {
          ++it;
        }
      }
    }
    ctx.img.areas.push_back(std::move(a));
    ctx.area_plans.push_back(plan);
  }
  if (!ctx.mapped_locks.empty()) {
    return user_error("a flock lock of the program is held through a mapping that is gone");
  }
  return {};
}

Status check_snapshot(const CaptureContext& ctx, pid_t snapshot) {
  auto flags = read_vm_flags(snapshot);
  if (!flags) {
    return std::move(flags).error();
  }
  for (size_t idx = 0; idx < ctx.img.areas.size(); ++idx) {
    const auto& plan = ctx.area_plans[idx];
    if (!plan.stores_pages || plan.read_while_frozen) {
      continue;
    }
    auto it = flags->find(ctx.img.areas[idx].start);
    if (it == flags->end() || it->second.find(" wf ") != std::string::npos ||
        it->second.find(" dc ") != std::string::npos) {
      return Error(EAGAIN, fmt::format("mapping {:#x} changed its fork flags during the "
                                       "checkpoint; try again",
                                       ctx.img.areas[idx].start));
    }
  }
  return {};
}

}  // namespace vos::capture
