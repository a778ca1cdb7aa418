// Host side (CLI): `vos inspect`.
#include <signal.h>
#include <sys/mman.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "image/image_reader.h"
#include "image/page_codec.h"
#include "image/page_reader.h"
#include "image/process_model.h"
#include "restore/restore.h"

namespace vos::cli {

namespace {

std::string prot_string(uint32_t prot, bool shared) {
  std::string s;
  s += (prot & PROT_READ) ? 'r' : '-';
  s += (prot & PROT_WRITE) ? 'w' : '-';
  s += (prot & PROT_EXEC) ? 'x' : '-';
  s += shared ? 's' : 'p';
  return s;
}

// "signal 35", "signal 36 to thread 3", "none": where a POSIX timer's expiry goes.
std::string timer_notify_string(const image::PosixTimer& t) {
  if ((t.notify & ~SIGEV_THREAD_ID) == SIGEV_NONE) {
    return "none";
  }
  std::string s = fmt::format("signal {}", t.signo);
  if (t.notify & SIGEV_THREAD_ID) {
    s += fmt::format(" to thread {}", t.tid);
  }
  return s;
}

std::string timer_arming_string(const image::PosixTimer& t) {
  std::string s = t.signal_pending  ? "expired, signal queued"
                  : t.value_ns != 0 ? fmt::format("next in {:.3f} s", t.value_ns / 1e9)
                                    : "not armed";
  if (t.interval_ns != 0) {
    s += fmt::format(", every {:.3f} s", t.interval_ns / 1e9);
  }
  return s;
}

// What the image keeps of a regular file: "" for a file merely reopened by path.
std::string file_detail(const image::FdState& f) {
  if (f.kind != image::FdKind::kFile) {
    return "";
  }
  if (f.dup_of >= 0) {
    return fmt::format("  [same open file as fd {}]", f.dup_of);
  }
  std::string offset = fmt::format("offset {}", f.pos);
  if (f.deleted) {
    return fmt::format("  [deleted: recreated from {} bytes in the image, {}]", f.data.size,
                       offset);
  }
  if (f.content_hash.empty()) {
    return "";
  }
  if (f.size == 0) {
    return fmt::format("  [written: empty at the checkpoint, {}]", offset);
  }
  return fmt::format("  [written: {} bytes at the checkpoint, {}, {}]", f.size,
                     f.data.size == f.size ? "content in the image" : "hash " + f.content_hash,
                     offset);
}

// The processes of the image, the first one first: a summary (`vos inspect` and --json).
nlohmann::json process_table(const image::ProcessImage& top) {
  nlohmann::json out = nlohmann::json::array();
  auto add = [&](const image::ProcessImage& p) {
    std::string cmd;
    for (const auto& a : p.argv) {
      cmd += (cmd.empty() ? "" : " ") + a;
    }
    uint64_t pages = 0;
    for (const auto& a : p.areas) {
      for (const auto& r : a.pages) {
        pages += r.npages;
      }
    }
    out.push_back({{"pid", p.pid},
                   {"ppid", p.ppid},
                   {"pgid", p.pgid},
                   {"sid", p.sid},
                   {"zombie", p.zombie},
                   {"stopped", p.stopped},
                   {"exit_status", p.exit_status},
                   {"threads", p.threads.size()},
                   {"fds", p.fds.size()},
                   {"pages", pages},
                   {"command", cmd}});
  };
  add(top);
  for (const auto& q : top.processes) {
    add(q);
  }
  return out;
}

}  // namespace

int cmd_inspect(const std::string& path, bool json) {
  auto reader = image::ImageReader::open(path);
  if (!reader) {
    std::fprintf(stderr, "vos inspect: %s\n", reader.error().describe().c_str());
    return 1;
  }
  nlohmann::json sections = nlohmann::json::array();
  bool all_ok = true;
  std::string corrupt;
  for (const auto& s : reader->sections()) {
    auto v = reader->verify_section(s);
    all_ok &= v.ok();
    if (!v.ok()) {
      corrupt += std::string(corrupt.empty() ? "" : ", ") + image::section_name(s.type);
    }
    sections.push_back({{"name", image::section_name(s.type)},
                        {"offset", s.offset},
                        {"size", s.size},
                        {"checksum", fmt::format("{:016x}", s.checksum)},
                        {"checksum_ok", v.ok()}});
  }
  auto meta = reader->read_section(abi::SectionType::kMeta);
  if (!meta) {
    std::fprintf(stderr, "vos inspect: %s\n", meta.error().describe().c_str());
    return 1;
  }
  auto proc = image::process_from_json(*meta);
  if (!proc) {
    std::fprintf(stderr, "vos inspect: %s: %s\n", path.c_str(), proc.error().describe().c_str());
    return 1;
  }
  auto pages = image::PageReader::open(*reader);
  if (!pages) {
    std::fprintf(stderr, "vos inspect: %s\n", pages.error().describe().c_str());
    return 1;
  }
  const char* codec = pages->compressed() ? image::codec_name(pages->codec()) : "none";
  // An incremental image: which parents it uses, how many pages from each, and whether each is
  // still where a restore will look for it.
  std::vector<uint64_t> from_parent(proc->parents.size() + 1, 0);
  for (const auto& a : proc->areas) {
    for (const auto& r : a.pages) {
      if (r.image < from_parent.size()) {
        from_parent[r.image] += r.npages;
      }
    }
  }
  nlohmann::json parents = nlohmann::json::array();
  for (size_t i = 0; i < proc->parents.size(); ++i) {
    const auto& ref = proc->parents[i];
    auto opened = restore::open_parent(path, ref);
    parents.push_back({{"path", opened ? opened->reader.path() : ref.path},
                       {"image_id", ref.image_id},
                       {"pages", from_parent[i + 1]},
                       {"found", opened.ok()},
                       {"error", opened ? std::string() : opened.error().describe()}});
    all_ok &= opened.ok();
  }
  if (json) {
    nlohmann::json j = {{"image", path},
                        {"image_id", proc->image_id},
                        {"parents", parents},
                        {"version", reader->header().version},
                        {"size", reader->header().file_size},
                        {"sections", sections},
                        {"pages",
                         {{"codec", codec},
                          {"frames", pages->frames().size()},
                          {"logical_bytes", pages->logical_size()},
                          {"stored_bytes", pages->stored_size()}}},
                        {"processes", process_table(*proc)},
                        {"process", image::to_json(*proc)}};
    std::printf("%s\n", j.dump(1).c_str());
    if (!corrupt.empty()) {
      std::fprintf(stderr, "vos inspect: %s: corrupt: checksum mismatch in section %s\n",
                   path.c_str(), corrupt.c_str());
    }
    return all_ok ? 0 : 1;
  }
  const auto& p = *proc;
  std::string cmd;
  for (const auto& a : p.argv) {
    cmd += (cmd.empty() ? "" : " ") + a;
  }
  std::printf("image     %s (format version %u, %lu bytes)\n", path.c_str(),
              reader->header().version, static_cast<unsigned long>(reader->header().file_size));
  std::printf("program   %s  pid %d  \"%s\"\n", p.name.c_str(), p.pid, cmd.c_str());
  std::printf("cwd       %s\n", p.cwd.c_str());
  if (p.console.present) {
    // (hex: two digits a byte)
    std::printf(
        "terminal  vos pty %ux%u, foreground group %d, %zu bytes typed and unread, screen "
        "%zu bytes\n",
        p.console.rows, p.console.cols, p.console.foreground, p.console.input.size() / 2,
        p.console.screen.size() / 2);
  }
  if (!p.processes.empty()) {
    std::printf("processes %zu (a tree; the details below are of the first one)\n",
                p.processes.size() + 1);
    for (const auto& q : process_table(p)) {
      std::string state =
          q["zombie"].get<bool>()
              ? fmt::format("zombie, status {:#x}", q["exit_status"].get<int>())
              : fmt::format("{}{} threads, {} fds, {} pages",
                            q["stopped"].get<bool>() ? "stopped, " : "", q["threads"].get<size_t>(),
                            q["fds"].get<size_t>(), q["pages"].get<uint64_t>());
      std::printf("  pid %-6d parent %-6d group %-6d session %-6d %-30s %s\n", q["pid"].get<int>(),
                  q["ppid"].get<int>(), q["pgid"].get<int>(), q["sid"].get<int>(), state.c_str(),
                  q["command"].get<std::string>().c_str());
    }
  }
  std::printf("sections\n");
  for (const auto& s : sections) {
    std::printf("  %-14s offset %10lu  size %12lu  xxh3 %s  %s\n",
                s["name"].get<std::string>().c_str(), s["offset"].get<unsigned long>(),
                s["size"].get<unsigned long>(), s["checksum"].get<std::string>().c_str(),
                s["checksum_ok"].get<bool>() ? "ok" : "CORRUPT");
  }
  std::printf("pages     %s, %lu bytes stored for %lu bytes of memory (%zu frames)\n", codec,
              static_cast<unsigned long>(pages->stored_size()),
              static_cast<unsigned long>(pages->logical_size()), pages->frames().size());
  if (!p.parents.empty()) {
    std::printf("chain     incremental: %lu pages stored here, %lu in %zu parent image(s)\n",
                static_cast<unsigned long>(p.pages_stored),
                static_cast<unsigned long>(p.pages_inherited), p.parents.size());
    for (const auto& par : parents) {
      std::printf("  %-60s %8lu pages  %s\n", par["path"].get<std::string>().c_str(),
                  par["pages"].get<unsigned long>(),
                  par["found"].get<bool>() ? "ok" : par["error"].get<std::string>().c_str());
    }
  }
  if (p.writes_tracked) {
    std::printf(
        "tracking  writes tracked (--incremental): once restored, the program's next "
        "incremental image builds on this one\n");
  }
  std::printf("threads   %zu\n", p.threads.size());
  for (const auto& t : p.threads) {
    std::printf("  tid %-6d %s\n", t.tid, t.comm.c_str());
  }
  if (!p.posix_timers.empty()) {
    std::printf("timers    %zu POSIX timers\n", p.posix_timers.size());
    for (const auto& t : p.posix_timers) {
      std::printf("  id %-5d clock %-7d %-22s %s\n", t.id, t.clockid,
                  timer_notify_string(t).c_str(), timer_arming_string(t).c_str());
    }
  }
  std::printf("memory    %zu mappings, %lu pages stored (%.1f MiB)\n", p.areas.size(),
              static_cast<unsigned long>(p.pages_stored), p.pages_stored * 4096.0 / (1 << 20));
  for (const auto& a : p.areas) {
    uint64_t stored = 0, inherited = 0;
    for (const auto& r : a.pages) {
      (r.image == 0 ? stored : inherited) += r.npages;
    }
    std::string pages = fmt::format("{:6} pages", stored);
    if (inherited != 0) {
      pages += fmt::format(" (+{} in parents)", inherited);
    }
    if (a.kind == image::AreaKind::kSysvShm) {
      pages = fmt::format("segment {}{}", a.shm_id, a.shm_rdonly ? " (SHM_RDONLY)" : "");
    }
    std::printf("  %012lx-%012lx %s %-11s %s  %s\n", static_cast<unsigned long>(a.start),
                static_cast<unsigned long>(a.end), prot_string(a.prot, a.shared).c_str(),
                image::area_kind_name(a.kind), pages.c_str(), a.name.c_str());
    for (const auto& l : a.locks) {
      std::printf("      %s (kept by this mapping)\n", image::describe_lock(l).c_str());
    }
  }
  if (!p.sysv_shm.empty()) {
    std::printf("sysv shm  %zu segments\n", p.sysv_shm.size());
    for (const auto& seg : p.sysv_shm) {
      uint64_t stored = 0;
      for (const auto& r : seg.pages) {
        stored += r.npages;
      }
      std::printf("  id %-8d key 0x%08x %10lu bytes  mode %03o  owner %u:%u%s%s  %lu pages\n",
                  seg.id, static_cast<uint32_t>(seg.key), static_cast<unsigned long>(seg.size),
                  seg.mode, seg.uid, seg.gid, seg.removed ? "  removed" : "",
                  seg.locked ? "  locked" : "", static_cast<unsigned long>(stored));
    }
  }
  if (!p.sysv_sem.empty()) {
    std::printf("sysv sem  %zu sets\n", p.sysv_sem.size());
    for (const auto& set : p.sysv_sem) {
      std::string values;
      for (size_t i = 0; i < set.values.size() && i < 16; ++i) {
        values += fmt::format("{}{}", i == 0 ? "" : " ", set.values[i]);
      }
      std::printf("  id %-8d key 0x%08x %5zu semaphores  mode %03o  owner %u:%u  values %s%s\n",
                  set.perm.id, static_cast<uint32_t>(set.perm.key), set.values.size(),
                  set.perm.mode, set.perm.uid, set.perm.gid, values.c_str(),
                  set.values.size() > 16 ? " ..." : "");
    }
  }
  if (!p.sysv_msg.empty()) {
    std::printf("sysv msg  %zu queues\n", p.sysv_msg.size());
    for (const auto& q : p.sysv_msg) {
      uint64_t bytes = 0;
      for (const auto& m : q.messages) {
        bytes += m.data.size() / 2;
      }
      std::printf("  id %-8d key 0x%08x %5zu messages, %lu of %lu bytes  mode %03o  owner %u:%u\n",
                  q.perm.id, static_cast<uint32_t>(q.perm.key), q.messages.size(),
                  static_cast<unsigned long>(bytes), static_cast<unsigned long>(q.qbytes),
                  q.perm.mode, q.perm.uid, q.perm.gid);
    }
  }
  std::printf("fds       %zu\n", p.fds.size());
  for (const auto& f : p.fds) {
    std::printf("  %3d %-11s %s%s\n", f.fd, image::fd_kind_name(f.kind),
                f.sockaddr.empty() ? f.path.c_str() : f.sockaddr.c_str(), file_detail(f).c_str());
    for (const auto& l : f.locks) {
      std::printf("      %s\n", image::describe_lock(l).c_str());
    }
  }
  if (!corrupt.empty()) {
    std::fprintf(stderr, "vos inspect: %s: corrupt: checksum mismatch in section %s\n",
                 path.c_str(), corrupt.c_str());
  }
  return all_ok ? 0 : 1;
}

}  // namespace vos::cli
