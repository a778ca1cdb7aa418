// Host side (keeper). System V shared memory of the program's IPC namespace: which segments
// exist, what each holds, and what about the program's attachments a restore cannot rebuild.
#pragma once

#include <sys/types.h>

#include <vector>

#include "capture/capture_context.h"
#include "capture/proc_files.h"

namespace vos::capture {

class PageSink;

// A mapping made by shmat (/SYSV<key> on the kernel's internal shm mount; its inode is the id).
bool is_sysv_shm_mapping(const MapsEntry& m);

// Attachments restore cannot rebuild, one error each (pure; `maps` as /proc/PID/maps lists them).
std::vector<Error> check_shm_attachments(const std::vector<MapsEntry>& maps);

// Before the freeze: the attachments above; and, outside an IPC namespace of the program's own,
// every attachment.
void precheck_sysv_ipc(const std::vector<MapsEntry>& maps, bool own_namespace,
                       Obstacles& obstacles);

// While frozen, after plan_memory: lists every segment into ctx.img.sysv_shm (by id) and sets
// each attachment's shm_rdonly; and the namespace's semaphore sets and message queues.
Status capture_sysv_shm(CaptureContext& ctx);

// While frozen: every segment's pages into `sink` (their runs into ctx.img.sysv_shm[].pages).
Status write_sysv_shm_pages(CaptureContext& ctx, PageSink& sink);

}  // namespace vos::capture
