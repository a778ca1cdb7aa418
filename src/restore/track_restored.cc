// Host side (keeper).
#include "restore/track_restored.h"

namespace vos::restore {

Result<capture::WriteTracker> track_restored_writes(pid_t pid, uint64_t syscall_insn,
                                                    const image::ProcessImage& img,
                                                    std::string* untracked) {
  auto tracker = capture::WriteTracker::create_in(pid, pid, syscall_insn);
  if (!tracker) {
    return std::move(tracker).error().context("tracking writes of the restored program");
  }
  // The same areas a checkpoint tracks (private anonymous memory): their content is now exactly
  // the image's, so a page not written from here on is the image's page.
  for (const auto& a : img.areas) {
    if (a.kind == image::AreaKind::kAnon && !a.shared) {
      auto st = tracker->track(a.start, a.end);
      if (!st && untracked->empty()) {
        *untracked = st.error().describe();
      }
    }
  }
  return tracker;
}

}  // namespace vos::restore
