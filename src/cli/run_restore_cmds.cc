// Host side (CLI): `vos run` and `vos restore`.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/clocks.h"
#include "cli/commands.h"
#include "cli/image_names.h"
#include "cli/launch.h"
#include "image/image_writer.h"
#include "keeper/as_user.h"
#include "keeper/spawn_program.h"
#include "restore/restore.h"

namespace vos::cli {

namespace {

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || n[0] == '.') {
    return false;
  }
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

int cmd_run(const RunArgs& a) {
  auto started = std::chrono::steady_clock::now();
  if (a.argv.empty()) {
    std::fprintf(stderr, "vos run: no program given\n");
    return 2;
  }
  LaunchOptions o;
  o.name = a.name.empty() ? default_name(a.argv[0]) : a.name;
  if (!valid_name(o.name)) {
    std::fprintf(stderr, "vos run: invalid name '%s' (letters, digits, - _ . only)\n",
                 o.name.c_str());
    return 2;
  }
  // (A default name was checked by default_name.)
  if (!a.name.empty() && keeper::name_in_use(o.name)) {
    std::fprintf(stderr, "vos run: a program named '%s' is already running (see vos ps)\n",
                 o.name.c_str());
    return 1;
  }
  o.detach = a.detach;
  o.no_pty = a.no_pty;
  o.json = a.json;
  o.entry.argv = a.argv;
  o.started = started;
  o.verb = "run";
  std::vector<std::string> argv = a.argv;
  std::vector<std::string> env = keeper::program_environment();
  std::string name = o.name;
  return launch(o, [&](keeper::KeeperPipes p) {
    keeper::keeper_for_new_program(name, argv, std::move(env), p);
  });
}

int cmd_restore(const RestoreArgs& args) {
  auto started = std::chrono::steady_clock::now();
  RestoreArgs a = args;
  if (a.image.empty() == a.latest.empty()) {
    std::fprintf(stderr, "vos restore: give an IMAGE, or --latest NAME [--dir DIR]\n");
    return 2;
  }
  if (!a.latest.empty()) {
    auto latest = latest_image(a.dir, a.latest);
    if (!latest) {
      std::fprintf(stderr, "vos restore: %s\n", latest.error().describe().c_str());
      return 1;
    }
    a.image = *latest;
  }
  // What a checkpoint that died left beside the image goes (the next checkpoint would remove it
  // too).
  std::string image_dir = std::filesystem::path(a.image).parent_path().string();
  for (const auto& left : image::remove_dead_temporaries(image_dir.empty() ? "." : image_dir)) {
    std::fprintf(stderr, "vos restore: removed %s, left by a checkpoint that died\n", left.c_str());
  }
  auto img = restore::load_image(a.image);
  if (!img) {
    std::fprintf(stderr, "vos restore: %s\n", img.error().describe().c_str());
    return 1;
  }
  auto files = a.files == "rewind" ? fds::RestorePolicy::Files::kRewind
               : a.files == "keep" ? fds::RestorePolicy::Files::kKeep
                                   : fds::RestorePolicy::Files::kCheck;
  img->policy.take_unix_sockets = a.take_unix_sockets;
  img->policy.files = files;
  img->lazy = a.lazy;
  auto ok = restore::check_restorable(*img, files);
  if (!ok) {
    std::fprintf(stderr, "vos restore: %s\n", ok.error().describe().c_str());
    return 1;
  }
  LaunchOptions o;
  o.name = a.name.empty() ? img->proc.name : a.name;
  if (o.name.empty()) {
    o.name = default_name(img->proc.argv.empty() ? "restored" : img->proc.argv[0]);
  }
  if (!valid_name(o.name)) {
    std::fprintf(stderr, "vos restore: invalid name '%s'\n", o.name.c_str());
    return 2;
  }
  if (keeper::name_in_use(o.name)) {
    auto e = keeper::find_entry(o.name);
    std::fprintf(stderr,
                 "vos restore: a program named '%s' is running (pid %d); stop it first or "
                 "restore under another name with --name\n",
                 o.name.c_str(), e ? e->pid : 0);
    return 1;
  }
  img->proc.name = o.name;
  // Decompressing needs threads, which must all be gone before launch() forks and unshares.
  auto pages = restore::open_page_sources(*img);
  if (!pages) {
    std::fprintf(stderr, "vos restore: %s\n", pages.error().describe().c_str());
    return 1;
  }
  if (::geteuid() == 0 && img->proc.uid != 0) {
    // Root restores a user's program as that user (the image and its files are open already):
    // it runs with its own credentials and is registered where the user's vos finds it.
    std::vector<gid_t> groups(img->proc.groups.begin(), img->proc.groups.end());
    if (auto st = keeper::become_user({img->proc.uid, img->proc.gid, groups}); !st) {
      std::fprintf(stderr, "vos restore: %s\n", st.error().describe().c_str());
      return 1;
    }
  }
  if (a.lazy) {
    if (auto st = restore::check_lazy_restorable(); !st) {
      std::fprintf(stderr, "vos restore: %s\n", st.error().describe().c_str());
      return 1;
    }
  }
  // Last before the program is recreated, once nothing else can refuse the restore: the files
  // it had open are changed only for a restore that goes ahead.
  if (auto rewound = restore::prepare_restore(*img, files); !rewound) {
    std::fprintf(stderr, "vos restore: %s\n", rewound.error().describe().c_str());
    return 1;
  }
  o.detach = a.detach;
  o.json = a.json;
  o.entry.argv = img->proc.argv;
  char abs[4096];
  o.entry.restored_from = ::realpath(a.image.c_str(), abs) != nullptr ? abs : a.image;
  o.started = started;
  o.verb = "restore";
  // A program that had a session inside its namespace (it was started detached) gets one again;
  // one that shared its starter's session joins ours.
  o.own_session = img->proc.sid != 0;
  o.console = &img->proc.console;
  // The program's clocks continue from the moment of the checkpoint.
  o.clocks.set = true;
  o.clocks.monotonic_ns = img->proc.monotonic_ns - host_clock_ns(CLOCK_MONOTONIC);
  o.clocks.boottime_ns = img->proc.boottime_ns - host_clock_ns(CLOCK_BOOTTIME);
  std::string name = o.name;
  restore::LoadedImage& loaded = *img;
  // A lazy restore verifies page data in the keeper, once all of it is in; the restorer checks
  // it itself where the images have per-chunk checksums.
  if (!loaded.restorer_checks_pages() && !a.lazy) {
    o.parallel_check = [&loaded] { return restore::verify_pages(loaded); };
  }
  o.after_fork = [&loaded] {
    loaded.pages.owned.reset();
    for (auto& p : loaded.parents) {
      p.pages.owned.reset();
    }
  };
  return launch(o, [&](keeper::KeeperPipes p) { keeper::keeper_for_restore(name, loaded, p); });
}

}  // namespace vos::cli
