// Host side (vos restore).
#include "fds/file_policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fds/file_content.h"

namespace vos::fds {

namespace {

using Files = RestorePolicy::Files;

constexpr const char* kKeepHint = "--files=keep takes it as it is now";
constexpr const char* kWithFilesHint =
    "which the image does not hold (vos checkpoint --with-files stores the files a program "
    "writes)";

// The image holds the file's content at the checkpoint (vos checkpoint --with-files).
bool content_stored(const image::FdState& rec) {
  return !rec.content_hash.empty() && rec.data.size == rec.size;
}

std::string_view content(const image::FdState& rec, const RestorePolicy& policy) {
  return policy.blobs.substr(rec.data.offset, rec.data.size);
}

Result<bool> first_bytes_match(const image::FdState& rec) {
  UniqueFd fd(::open(rec.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return sys_error("fd {}: opening {} to compare it with the checkpoint", rec.fd, rec.path);
  }
  auto h = hash_prefix(fd.get(), rec.size);
  if (!h) {
    return std::move(h).error().context(fmt::format("fd {}: reading {}", rec.fd, rec.path));
  }
  return *h == rec.content_hash;
}

Status check_for_rewind(const image::FdState& rec, const RestorePolicy& policy, bool exists,
                        const struct stat& st) {
  bool stored = content_stored(rec);
  if (!exists) {
    if (!stored) {
      return user_error(
          "fd {}: file {} that the program had open is gone, and rewinding it needs "
          "its content, {}",
          rec.fd, rec.path, kWithFilesHint);
    }
    std::string dir = directory_of(rec.path);
    struct stat d {};
    if (::stat(dir.c_str(), &d) != 0 || !S_ISDIR(d.st_mode)) {
      return user_error(
          "fd {}: file {} is gone and cannot be written back: its directory {} is "
          "gone too",
          rec.fd, rec.path, dir);
    }
    return {};
  }
  if (!S_ISREG(st.st_mode)) {
    return user_error("fd {}: {} is no longer a regular file", rec.fd, rec.path);
  }
  if (stored) {
    return {};  // written back whatever it holds now
  }
  uint64_t now = static_cast<uint64_t>(st.st_size);
  bool written = policy.proc != nullptr ? file_written(*policy.proc, rec)
                                        : (rec.flags & O_ACCMODE) != O_RDONLY;
  if (!written) {
    if (now == rec.size) {
      return {};
    }
    return user_error(
        "fd {}: file {} changed size since the checkpoint (was {} bytes, now {}), "
        "and the program did not have it open for writing: --files=rewind does "
        "not undo what others wrote; {}",
        rec.fd, rec.path, rec.size, now, kKeepHint);
  }
  if (rec.content_hash.empty()) {
    return user_error(
        "fd {}: file {} changed since the checkpoint, and its content there was not "
        "recorded (the checkpoint's note says why); {}",
        rec.fd, rec.path, kKeepHint);
  }
  if (now < rec.size) {
    return user_error(
        "fd {}: file {} shrank since the checkpoint (was {} bytes, now {}): "
        "rewinding it needs its content, {}; {}",
        rec.fd, rec.path, rec.size, now, kWithFilesHint, kKeepHint);
  }
  auto same = first_bytes_match(rec);
  if (!same) {
    return std::move(same).error();
  }
  if (!*same) {
    return user_error(
        "fd {}: file {}: its first {} bytes changed since the checkpoint (it was "
        "not only written on at its end): rewinding it needs its content, {}; {}",
        rec.fd, rec.path, rec.size, kWithFilesHint, kKeepHint);
  }
  return {};
}

}  // namespace

Status check_file(const image::FdState& rec, const RestorePolicy& policy) {
  struct stat st {};
  bool exists = ::stat(rec.path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT && errno != ENOTDIR) {
    return sys_error("fd {}: file {} that the program had open", rec.fd, rec.path);
  }
  switch (policy.files) {
    case Files::kRewind:
      return check_for_rewind(rec, policy, exists, st);
    case Files::kKeep:
      if (!exists) {
        return user_error(
            "fd {}: file {} that the program had open is gone{}", rec.fd, rec.path,
            content_stored(rec) ? " (--files=rewind writes it back from the image)" : "");
      }
      return {};
    case Files::kCheck:
      break;
  }
  if (!exists) {
    return user_error("fd {}: file {} that the program had open is gone{}", rec.fd, rec.path,
                      content_stored(rec) ? " (--files=rewind writes it back from the image)" : "");
  }
  if (static_cast<uint64_t>(st.st_size) != rec.size) {
    return user_error(
        "fd {}: file {} changed size since the checkpoint (was {} bytes, now {}): "
        "--files=rewind brings it back to {} bytes (if what it held then is "
        "unchanged or kept in the image), {}",
        rec.fd, rec.path, rec.size, st.st_size, rec.size, kKeepHint);
  }
  return {};
}

Status rewind_file(const image::FdState& rec, const RestorePolicy& policy) {
  if (policy.files != Files::kRewind) {
    return {};
  }
  struct stat st {};
  bool exists = ::stat(rec.path.c_str(), &st) == 0;
  if (content_stored(rec)) {
    if (exists && static_cast<uint64_t>(st.st_size) == rec.size) {
      auto same = first_bytes_match(rec);
      if (same && *same) {
        return {};  // as it was: nothing to write
      }
    }
    UniqueFd fd(::open(rec.path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, rec.mode & 07777));
    if (!fd.valid()) {
      return sys_error("fd {}: opening {} to write back its content", rec.fd, rec.path);
    }
    if (!exists && rec.mode != 0 && ::fchmod(fd.get(), rec.mode & 07777) != 0) {
      return sys_error("fd {}: setting the mode of {}", rec.fd, rec.path);
    }
    VOS_TRY(write_all_at(fd.get(), content(rec, policy), 0), "fd {}: writing back {}", rec.fd,
            rec.path);
    if (::ftruncate(fd.get(), static_cast<off_t>(rec.size)) != 0) {
      return sys_error("fd {}: cutting {} to {} bytes", rec.fd, rec.path, rec.size);
    }
    return {};
  }
  if (!exists || static_cast<uint64_t>(st.st_size) <= rec.size || rec.content_hash.empty()) {
    return {};  // check_file allowed it as it is
  }
  UniqueFd fd(::open(rec.path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::ftruncate(fd.get(), static_cast<off_t>(rec.size)) != 0) {
    return sys_error("fd {}: cutting {} back to {} bytes", rec.fd, rec.path, rec.size);
  }
  return {};
}

}  // namespace vos::fds
