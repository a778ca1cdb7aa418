// Host side.
#include "image/finish_image.h"

namespace vos::image {

Status finish_image(ImageWriter& writer, const std::string& blobs, const ProcessImage& proc,
                    const std::vector<std::string_view>& more_blobs) {
  if (!proc.processes.empty()) {
    writer.require_version(abi::kImageVersionTrees);
  }
  bool stopped = proc.stopped;
  for (const auto& p : proc.processes) {
    stopped |= p.stopped;
    // An older vos would wait for the helper to stay a zombie, which init reaps at once.
    if (p.helper) {
      writer.require_version(abi::kImageVersionLeaderHelpers);
    }
  }
  if (proc.console.present || stopped) {
    writer.require_version(abi::kImageVersionConsole);
  }
  if (!proc.posix_timers.empty()) {
    writer.require_version(abi::kImageVersionPosixTimers);
  }
  // An older vos would restore the program without its locks, which it still believes it holds.
  if (has_file_locks(proc)) {
    writer.require_version(abi::kImageVersionFileLocks);
  }
  if (!proc.sysv_shm.empty()) {
    writer.require_version(abi::kImageVersionSysvShm);
  }
  if (!proc.sysv_sem.empty() || !proc.sysv_msg.empty()) {
    writer.require_version(abi::kImageVersionSysvSemMsg);
  }
  bool deleted_files = false;
  for (const auto& f : proc.fds) {
    deleted_files |= f.deleted;
    if (f.kind == FdKind::kUnixOrphan) {
      writer.require_version(abi::kImageVersionOrphanSockets);
    }
    if (f.kind == FdKind::kUnixPair) {
      writer.require_version(abi::kImageVersionTrees);
    }
    if (f.kind == FdKind::kFifo) {
      writer.require_version(abi::kImageVersionFifos);
    }
  }
  for (const auto& a : proc.areas) {
    deleted_files |= a.kind == AreaKind::kDeletedFile;
  }
  if (deleted_files) {
    writer.require_version(abi::kImageVersionDeletedFiles);
  }
  VOS_TRY(writer.begin_section(abi::SectionType::kBlobs), "blobs");
  VOS_TRY(writer.write(blobs.data(), blobs.size()), "blobs");
  for (auto more : more_blobs) {
    VOS_TRY(writer.write(more.data(), more.size()), "blobs");
  }
  VOS_TRY(writer.end_section(), "blobs");
  std::string meta = to_json(proc).dump(1);
  VOS_TRY(writer.begin_section(abi::SectionType::kMeta), "meta");
  VOS_TRY(writer.write(meta.data(), meta.size()), "meta");
  VOS_TRY(writer.end_section(), "meta");
  return writer.commit();
}

}  // namespace vos::image
