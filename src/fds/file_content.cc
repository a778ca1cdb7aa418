// Host side.
#include "fds/file_content.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <vector>

#include "base/fast_hash.h"

namespace vos::fds {

namespace {

constexpr size_t kChunk = 1 << 20;  // larger reads gain nothing from the page cache

// Reads bytes [at, at + size) of `fd` into `out`; `total` (the bytes the caller expects in all)
// only names the shortfall when the file ends first.
Status read_range(int fd, char* out, uint64_t at, uint64_t size, uint64_t total) {
  uint64_t done = 0;
  while (done < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, size - done));
    ssize_t n = ::pread(fd, out + done, want, static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return sys_error("reading at offset {}", at + done);
    }
    if (n == 0) {
      return user_error("the file has only {} of its {} bytes", at + done, total);
    }
    done += static_cast<uint64_t>(n);
  }
  return {};
}

}  // namespace

std::string without_deleted_suffix(const std::string& link) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (link.size() > kDeleted.size() &&
      std::string_view(link).substr(link.size() - kDeleted.size()) == kDeleted) {
    return link.substr(0, link.size() - kDeleted.size());
  }
  return link;
}

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status read_prefix(int fd, char* out, uint64_t size) {
  return read_range(fd, out, 0, size, size);
}

Result<std::string> hash_prefix(int fd, uint64_t size) {
  std::vector<char> buf(
      static_cast<size_t>(std::min<uint64_t>(kChunk, std::max<uint64_t>(size, 1))));
  Xxh3Stream h;
  for (uint64_t done = 0; done < size;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
    if (auto read = read_range(fd, buf.data(), done, want, size); !read) {
      return std::move(read).error();
    }
    h.update(buf.data(), want);
    done += want;
  }
  return fmt::format("{:016x}", h.digest());
}

std::string hash_hex(std::string_view data) {
  return fmt::format("{:016x}", xxh3(data.data(), data.size()));
}

Status write_all_at(int fd, std::string_view data, off_t at) {
  size_t done = 0;
  while (done < data.size()) {
    size_t want = std::min(kChunk, data.size() - done);
    ssize_t n = ::pwrite(fd, data.data() + done, want, at + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return sys_error("writing at offset {}", at + static_cast<off_t>(done));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<UniqueFd> create_unnamed(const std::string& dir, int flags) {
  flags = (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_TMPFILE)) | O_CLOEXEC;
  UniqueFd fd(::open(dir.c_str(), flags | O_TMPFILE, 0600));
  if (fd.valid()) {
    return fd;
  }
  // EOPNOTSUPP: a filesystem without O_TMPFILE; EISDIR/EINVAL: a kernel without it.
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return sys_error("creating an unnamed file in {}", dir);
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint64_t r = 0;
    if (::getrandom(&r, sizeof r, 0) != sizeof r) {
      r = static_cast<uint64_t>(::getpid()) * 2654435761u + static_cast<uint64_t>(attempt);
    }
    std::string name = fmt::format("{}/.vos-deleted-{:016x}", dir, r);
    fd.reset(::open(name.c_str(), flags | O_CREAT | O_EXCL, 0600));
    if (!fd.valid() && errno == EEXIST) {
      continue;
    }
    if (!fd.valid()) {
      return sys_error("creating {}", name);
    }
    if (::unlink(name.c_str()) != 0) {
      return sys_error("unlinking {}", name);
    }
    return fd;
  }
  return user_error("creating an unnamed file in {}: every name tried exists", dir);
}

const image::FdState& file_record(const image::ProcessImage& p, const image::FdState& f) {
  if (f.dev == 0 && f.ino == 0) {
    return f;
  }
  for (const auto& o : p.fds) {
    if (o.kind == image::FdKind::kFile && o.dup_of < 0 && o.dev == f.dev && o.ino == f.ino &&
        o.deleted == f.deleted) {
      return o;  // fds are in ascending order: the first is the lowest
    }
  }
  return f;
}

bool file_written(const image::ProcessImage& p, const image::FdState& f) {
  if (f.dev == 0 && f.ino == 0) {
    return (f.flags & O_ACCMODE) != O_RDONLY;
  }
  for (const auto& o : p.fds) {
    if (o.kind == image::FdKind::kFile && o.dev == f.dev && o.ino == f.ino &&
        o.deleted == f.deleted && (o.flags & O_ACCMODE) != O_RDONLY) {
      return true;
    }
  }
  return false;
}

}  // namespace vos::fds
