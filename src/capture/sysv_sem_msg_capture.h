// Host side (keeper). System V semaphore sets and message queues of the program's IPC namespace:
// read while the program is frozen, through the keeper's own calls (it is in that namespace).
#pragma once

#include "base/result.h"
#include "image/process_model.h"

namespace vos::capture {

// Every semaphore set (values, owners) and message queue (limit, owners, every message, read
// with MSG_COPY so the queue is left as it was) into img.sysv_sem / img.sysv_msg, by id.
Status capture_sysv_sem_msg(image::ProcessImage& img);

}  // namespace vos::capture
