// Host side (keeper). Open file descriptors: each is probed through /proc and handed to the kind
// that recognises it (fds/kinds.cc); where content is needed (pipe data, memfd contents) the
// kind reads a copy of the descriptor (pidfd_getfd), never disturbing the program's own. File
// locks are read with the descriptor they were set through (capture/lock_capture.cc).
// contents the image keeps (deleted files, --with-files) are limited in all, and the files the
// program writes are hashed only once it runs again (finish_fds).
#include <sys/syscall.h>
#include <unistd.h>

#include "capture/capture_context.h"
#include "capture/lock_capture.h"
#include "fds/fd_kind.h"
#include "fds/file_content.h"

namespace vos::capture {

namespace {

const fds::FdKindHandler* kind_of(const fds::FdProbe& f, const fds::ProbeSet& all) {
  for (const auto* k : fds::fd_kinds()) {
    if (k->matches(f, all)) {
      return k;
    }
  }
  return nullptr;
}

// The lower fd sharing `f`'s open file description (dup, dup2, fork), or -1.
int find_dup(const fds::ProbeSet& all, const fds::FdProbe& f) {
  constexpr int kKcmpFile = 0;
  for (const auto& o : all.fds) {
    if (o.fd >= f.fd) {
      break;
    }
    if (o.st.st_dev == f.st.st_dev && o.st.st_ino == f.st.st_ino &&
        ::syscall(SYS_kcmp, all.pid, all.pid, kKcmpFile, o.fd, f.fd) == 0) {
      return o.fd;
    }
  }
  return -1;
}

std::string size_text(uint64_t bytes) {
  if (bytes < 1024) {
    return fmt::format("{} bytes", bytes);
  }
  if (bytes < (1 << 20)) {
    return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  }
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

// The file contents the image would keep, refused when over the limit: every file is named, so
// that the user sees what to close or how far to raise the limit.
Status check_file_data(const fds::ProbeSet& all, const fds::FileContentPolicy& files) {
  uint64_t total = 0;
  std::string list;
  for (const auto& f : all.fds) {
    const auto* kind = kind_of(f, all);
    uint64_t n = kind != nullptr ? kind->stored_bytes(f, all, files) : 0;
    if (n > 0) {
      total += n;
      list += fmt::format("{}fd {}: {} ({})", list.empty() ? "" : ", ", f.fd, f.link, size_text(n));
    }
  }
  if (total <= files.limit) {
    return {};
  }
  return user_error(
      "the image would hold {} of file contents ({}{}), over the limit of {}: vos checkpoint "
      "--file-data-limit=SIZE raises it",
      size_text(total), list,
      files.with_files ? "; --with-files stores the files open for writing" : "",
      size_text(files.limit));
}

}  // namespace

void precheck_fds(pid_t pid, const std::string& log, dev_t console_rdev, Obstacles& obstacles,
                  const fds::FileContentPolicy& files,
                  const std::vector<std::pair<std::string, int>>& elsewhere) {
  auto all = fds::probe_fds(pid, log, console_rdev);
  if (!all) {
    obstacles.add(all.error());
    return;
  }
  all->elsewhere = elsewhere;
  for (const auto& f : all->fds) {
    const auto* kind = kind_of(f, *all);
    if (kind == nullptr) {
      obstacles.add(fds::unsupported_fd(f));
      continue;
    }
    if (auto st = kind->check(f, *all); !st) {
      obstacles.add(st.error());
    }
    if (find_dup(*all, f) >= 0) {
      continue;  // its locks are the lower fd's
    }
    if (auto locks = capture_fd_locks(f, kind->kind()); !locks) {
      obstacles.add(locks.error());
    }
  }
  check_process_locks(*all, nullptr, obstacles);
  if (auto st = check_file_data(*all, files); !st) {
    obstacles.add(st.error());
  }
}

Status capture_fds(CaptureContext& ctx) {
  auto all = fds::probe_fds(ctx.pid, ctx.log, ctx.console_rdev);
  if (!all) {
    return std::move(all).error();
  }
  all->elsewhere = ctx.elsewhere;
  // The files may have grown since the precheck.
  VOS_TRY(check_file_data(*all, ctx.files), "{}", ctx.who);
  fds::CaptureSink sink;
  sink.add_blob = [&ctx](const void* data, size_t size) { return ctx.add_blob(data, size); };
  sink.file_content = [&ctx](int fd, size_t size) {
    // Not zeroed: it is read into at once.
    ctx.file_contents.push_back({fd, std::make_unique_for_overwrite<char[]>(size), size});
    return ctx.file_contents.back().bytes.get();
  };
  sink.files = ctx.files;
  for (const auto& f : all->fds) {
    image::FdState s;
    if (int dup = find_dup(*all, f); dup >= 0) {
      for (const auto& earlier : ctx.img.fds) {
        if (earlier.fd == dup) {
          s = earlier;  // same object; only the number and close-on-exec differ
          s.data = {};
          s.locks.clear();  // held by the open file description, listed once
        }
      }
      s.fd = f.fd;
      s.dup_of = dup;
      s.cloexec = f.cloexec;
      ctx.img.fds.push_back(std::move(s));
      continue;
    }
    const auto* kind = kind_of(f, *all);
    if (kind == nullptr) {
      return fds::unsupported_fd(f);  // appeared since the precheck
    }
    if (auto st = kind->check(f, *all); !st) {
      return std::move(st).error();
    }
    s.fd = f.fd;
    s.kind = kind->kind();
    s.flags = f.flags;
    s.cloexec = f.cloexec;
    s.pos = std::strtoull(f.info.get("pos").c_str(), nullptr, 10);
    s.path = f.link;
    s.ino = f.st.st_ino;
    VOS_TRY(kind->capture(f, *all, sink, s), "fd {}", f.fd);
    auto locks = capture_fd_locks(f, s.kind);
    if (!locks) {
      return std::move(locks).error();
    }
    s.locks = std::move(*locks);
    ctx.img.fds.push_back(std::move(s));
  }
  ctx.late_hashes = std::move(sink.late_hashes);
  Obstacles lock_obstacles;
  check_process_locks(*all, &ctx.proc_locks, lock_obstacles, &ctx.mapped_locks);
  if (!lock_obstacles.empty()) {
    return user_error("{}", lock_obstacles.items().front());
  }
  if (ctx.console_state) {
    auto c = ctx.console_state();
    if (!c) {
      return std::move(c).error().context("the program's terminal");
    }
    ctx.img.console = std::move(*c);
  }
  return {};
}

std::string finish_fds(CaptureContext& ctx) {
  std::string note;
  auto entry = [&ctx](int fd) -> image::FdState* {
    for (auto& s : ctx.img.fds) {
      if (s.fd == fd) {
        return &s;
      }
    }
    return nullptr;
  };
  for (auto& late : ctx.late_hashes) {
    image::FdState* s = entry(late.fd);
    if (s == nullptr) {
      continue;
    }
    if (!late.file.valid() && late.unreadable.empty()) {
      s->content_hash = fds::hash_hex(late.stored);
      continue;
    }
    auto h = late.file.valid() ? fds::hash_prefix(late.file.get(), late.size)
                               : Result<std::string>(user_error("{}", late.unreadable));
    if (h) {
      s->content_hash = *h;
    } else {
      // Cut shorter (or unreadable) before vos read it: what it held is unknown, and
      // --files=rewind refuses it.
      note += fmt::format(
          "{}fd {}: {} not hashed after the checkpoint ({}): vos restore "
          "--files=rewind cannot bring it back",
          note.empty() ? "" : "; ", s->fd, s->path, h.error().describe());
    }
  }
  ctx.late_hashes.clear();
  for (auto& s : ctx.img.fds) {
    if (s.dup_of >= 0) {
      if (const image::FdState* of = entry(s.dup_of)) {
        s.content_hash = of->content_hash;
      }
    }
  }
  return note;
}

std::vector<std::string_view> place_file_contents(CaptureContext& ctx, uint64_t at) {
  std::vector<std::string_view> parts;
  for (const auto& c : ctx.file_contents) {
    for (auto& s : ctx.img.fds) {
      if (s.fd == c.fd) {
        s.data = {at, c.size};
      }
    }
    parts.emplace_back(c.bytes.get(), c.size);
    at += c.size;
  }
  return parts;
}

}  // namespace vos::capture
