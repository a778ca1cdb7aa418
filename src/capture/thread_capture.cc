// Host side (keeper). Per-thread state: registers, extended FPU state, signal mask, pending
// signals, and what only the thread itself can report (alternate stack, clear-tid address),
// asked for by running the system call inside the stopped thread.
#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "abi/kernel_uapi.h"
#include "capture/capture_context.h"
#include "capture/proc_files.h"

namespace vos::capture {

namespace {

constexpr size_t kMaxXstate = 64 * 1024;
constexpr int kPeekBatch = 32;

Status capture_pending(CaptureContext& ctx, pid_t tid, bool shared,
                       std::vector<image::BlobRef>& out) {
  for (int start = 0;; start += kPeekBatch) {
    __ptrace_peeksiginfo_args args{};
    args.off = static_cast<uint64_t>(start);
    args.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    args.nr = kPeekBatch;
    siginfo_t infos[kPeekBatch];
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid, &args, infos);
    if (n < 0) {
      return sys_error("reading pending signals of thread {}", tid);
    }
    for (long i = 0; i < n; ++i) {
      out.push_back(ctx.add_blob(&infos[i], sizeof(siginfo_t)));
    }
    if (n < kPeekBatch) {
      return {};
    }
  }
}

}  // namespace

Status capture_threads(CaptureContext& ctx) {
  auto& session = *ctx.session;
  std::vector<char> xstate(kMaxXstate);
  for (auto& stop : session.threads()) {
    pid_t tid = stop.tid;
    image::ThreadState t;
    t.tid = tid;
    auto comm = read_text_file(fmt::format("/proc/{}/task/{}/comm", ctx.pid, tid));
    if (comm) {
      t.comm = comm->substr(0, comm->find('\n'));
    }
    iovec iov{xstate.data(), xstate.size()};
    if (::ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) != 0) {
      return sys_error("reading FPU/AVX state of thread {}", tid);
    }
    t.xstate = ctx.add_blob(xstate.data(), iov.iov_len);
    if (::ptrace(PTRACE_GETSIGMASK, tid, sizeof t.sigmask, &t.sigmask) != 0) {
      return sys_error("reading signal mask of thread {}", tid);
    }
    uapi::PtraceRseqConfiguration rseq{};
    if (::ptrace(static_cast<__ptrace_request>(uapi::kPtraceGetRseqConfiguration), tid, sizeof rseq,
                 &rseq) > 0) {
      t.rseq_addr = rseq.rseq_abi_pointer;
      t.rseq_len = rseq.rseq_abi_size;
      t.rseq_sig = rseq.signature;
    }
    void* head = nullptr;
    size_t len = 0;
    if (::syscall(SYS_get_robust_list, tid, &head, &len) == 0) {
      t.robust_list = reinterpret_cast<uint64_t>(head);
      t.robust_list_len = len;
    }

    const CaptureContext::Asked::Thread* asked = nullptr;
    if (ctx.asked) {
      if (auto it = ctx.asked->threads.find(tid); it != ctx.asked->threads.end()) {
        asked = &it->second;  // by ask_together
      }
    }
    CaptureContext::Asked alone;
    if (asked == nullptr) {
      if (auto st = ask_thread_alone(ctx, stop, alone); !st) {
        return st;
      }
      asked = &alone.threads[tid];
    }
    t.altstack = asked->altstack;
    t.clear_child_tid = asked->clear_child_tid;

    VOS_TRY(capture_pending(ctx, tid, false, t.pending), "thread {}", tid);
    if (tid == ctx.pid) {
      VOS_TRY(capture_pending(ctx, tid, true, ctx.img.shared_pending), "process {}", ctx.pid);
    }
    // A signal that is pending and not blocked would make the kernel report EINTR to the
    // program itself; keep that result rather than restarting the call.
    bool deliverable = false;
    auto status = read_text_file(fmt::format("/proc/{}/task/{}/status", ctx.pid, tid));
    if (status) {
      auto kv = parse_key_values(*status);
      uint64_t pend = std::strtoull(kv.get("SigPnd").c_str(), nullptr, 16) |
                      std::strtoull(kv.get("ShdPnd").c_str(), nullptr, 16);
      deliverable = (pend & ~t.sigmask) != 0;
    }
    user_regs_struct regs = resumable_regs(stop.regs, deliverable);
    t.regs = ctx.add_blob(&regs, sizeof regs);
    ctx.img.threads.push_back(t);
  }
  return {};
}

}  // namespace vos::capture
