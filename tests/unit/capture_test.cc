// Unit tests of the capture side's pure logic: /proc parsers and the rewriting of registers that
// makes an interrupted system call resume correctly after a restore.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

#include "capture/posix_timers.h"
#include "capture/proc_files.h"
#include "capture/ptrace_session.h"

namespace vos::capture {
namespace {

TEST(ParseMaps, ReadsEveryField) {
  auto maps = parse_maps(
      "55d0c1a00000-55d0c1a02000 r-xp 00001000 fe:01 1234567                    /usr/bin/cat\n"
      "7ffd0e3c1000-7ffd0e3e2000 rw-p 00000000 00:00 0                          [stack]\n"
      "7f0000000000-7f0000001000 rw-s 00000000 00:01 42                         /dev/zero "
      "(deleted)\n"
      "7f0000002000-7f0000003000 ---p 00000000 00:00 0 \n");
  ASSERT_TRUE(maps) << maps.error().describe();
  ASSERT_EQ(maps->size(), 4u);
  const auto& m = (*maps)[0];
  EXPECT_EQ(m.start, 0x55d0c1a00000u);
  EXPECT_EQ(m.end, 0x55d0c1a02000u);
  EXPECT_TRUE(m.r && !m.w && m.x && !m.shared);
  EXPECT_EQ(m.offset, 0x1000u);
  EXPECT_EQ(m.dev_major, 0xfeu);
  EXPECT_EQ(m.dev_minor, 1u);
  EXPECT_EQ(m.ino, 1234567u);
  EXPECT_EQ(m.name, "/usr/bin/cat");
  EXPECT_EQ((*maps)[1].name, "[stack]");
  EXPECT_TRUE((*maps)[2].shared);
  EXPECT_EQ((*maps)[2].name, "/dev/zero (deleted)");
  EXPECT_EQ((*maps)[3].name, "");
  EXPECT_FALSE((*maps)[3].r);
}

TEST(ParseMaps, RejectsGarbage) {
  EXPECT_FALSE(parse_maps("this is not a maps line\n"));
}

TEST(ParseKeyValues, KeepsOrderedLinesAndValues) {
  auto kv = parse_key_values("pos:\t0\nflags:\t02004002\ntfd:        5 events:       19 data: 7\n");
  EXPECT_EQ(kv.get("flags"), "02004002");
  EXPECT_EQ(kv.get("pos"), "0");
  EXPECT_EQ(kv.get("missing"), "");
  ASSERT_EQ(kv.lines.size(), 3u);
  EXPECT_EQ(kv.lines[2].rfind("tfd:", 0), 0u);
}

TEST(ParsePosixTimers, ReadsEveryTimerSortedById) {
  auto timers = parse_posix_timers(
      "ID: 8\n"
      "signal: 32/000055db015a3580\n"
      "notify: signal/tid.4216\n"
      "ClockID: 1\n"
      "ID: 7\n"
      "signal: 0/00007f00000010f6\n"
      "notify: none/pid.4213\n"
      "ClockID: -33722\n"
      "ID: 0\n"
      "signal: 35/00000000000071c4\n"
      "notify: signal/pid.4213\n"
      "ClockID: 1\n"
      "ID: 3\n"
      "signal: 12/000000000000beef\n"
      "notify: thread/pid.4213\n"
      "ClockID: -6\n");
  ASSERT_TRUE(timers) << timers.error().describe();
  ASSERT_EQ(timers->size(), 4u);
  const auto& t = *timers;
  EXPECT_EQ(t[0].id, 0);
  EXPECT_EQ(t[0].signo, 35);
  EXPECT_EQ(t[0].sigval, 0x71c4u);
  EXPECT_EQ(t[0].notify, SIGEV_SIGNAL);
  EXPECT_EQ(t[0].clockid, CLOCK_MONOTONIC);
  EXPECT_EQ(t[1].id, 3);
  EXPECT_EQ(t[1].notify, SIGEV_THREAD);
  EXPECT_EQ(t[1].clockid, -6);
  EXPECT_EQ(t[2].id, 7);
  EXPECT_EQ(t[2].notify, SIGEV_NONE);
  EXPECT_EQ(t[2].sigval, 0x7f00000010f6u);
  EXPECT_EQ(t[2].clockid, -33722);
  EXPECT_EQ(t[3].id, 8);
  EXPECT_EQ(t[3].notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
  EXPECT_EQ(t[3].tid, 4216);
  EXPECT_EQ(t[3].sigval, 0x55db015a3580u);
  EXPECT_TRUE(parse_posix_timers("")->empty());
}

TEST(ParsePosixTimers, RejectsGarbage) {
  EXPECT_FALSE(parse_posix_timers("signal: 14/0\n"));
  EXPECT_FALSE(parse_posix_timers("ID: 1\nnotify: later/pid.3\n"));
  EXPECT_FALSE(parse_posix_timers("ID: 1\nno colon here\n"));
}

TEST(CheckPosixTimers, RefusesWhatCannotBeRecreated) {
  auto timer = [](int32_t clockid, int32_t notify, int32_t tid) {
    image::PosixTimer t;
    t.id = 1;
    t.clockid = clockid;
    t.notify = notify;
    t.tid = tid;
    return std::vector<image::PosixTimer>{t};
  };
  const std::set<pid_t> one = {2}, two = {2, 3};
  auto thread_clock = [](pid_t tid) { return static_cast<int32_t>((~tid << 3) | 6); };
  auto process_clock = [](pid_t pid) { return static_cast<int32_t>((~pid << 3) | 2); };
  EXPECT_TRUE(check_posix_timers(timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, 0), 2, two));
  EXPECT_TRUE(check_posix_timers(timer(CLOCK_REALTIME, SIGEV_SIGNAL | SIGEV_THREAD_ID, 3), 2, two));
  auto gone = check_posix_timers(timer(CLOCK_REALTIME, SIGEV_SIGNAL | SIGEV_THREAD_ID, 4), 2, two);
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().describe().find("thread 4"), std::string::npos);
  // CLOCK_THREAD_CPUTIME_ID (-2): the creating thread, known only when there is one.
  EXPECT_TRUE(check_posix_timers(timer(-2, SIGEV_NONE, 0), 2, one));
  auto which = check_posix_timers(timer(-2, SIGEV_NONE, 0), 2, two);
  ASSERT_FALSE(which);
  EXPECT_NE(which.error().describe().find("CLOCK_THREAD_CPUTIME_ID"), std::string::npos);
  EXPECT_TRUE(check_posix_timers(timer(thread_clock(3), SIGEV_NONE, 0), 2, two));
  EXPECT_FALSE(check_posix_timers(timer(thread_clock(9), SIGEV_NONE, 0), 2, two));
  EXPECT_TRUE(check_posix_timers(timer(-6, SIGEV_NONE, 0), 2, two));  // CLOCK_PROCESS_CPUTIME_ID
  EXPECT_TRUE(check_posix_timers(timer(process_clock(2), SIGEV_NONE, 0), 2, two));
  EXPECT_FALSE(check_posix_timers(timer(process_clock(7), SIGEV_NONE, 0), 2, two));
  EXPECT_FALSE(check_posix_timers(timer((~5 << 3) | 3, SIGEV_NONE, 0), 2, two));  // a device fd
}

user_regs_struct in_syscall(long nr, long ret) {
  user_regs_struct r{};
  r.orig_rax = static_cast<unsigned long long>(nr);
  r.rax = static_cast<unsigned long long>(ret);
  r.rip = 0x1002;
  return r;
}

TEST(ResumableRegs, RestartableCallsAreReissued) {
  for (long code : {-512L, -513L, -514L}) {
    auto r = resumable_regs(in_syscall(SYS_read, code), false);
    EXPECT_EQ(r.rip, 0x1000u);
    EXPECT_EQ(r.rax, static_cast<unsigned long long>(SYS_read));
    EXPECT_EQ(static_cast<long>(r.orig_rax), -1);
  }
}

TEST(ResumableRegs, NanosleepResumesWithRemainingTime) {
  auto in = in_syscall(SYS_nanosleep, -516);
  in.rdi = 0x5000;  // req
  in.rsi = 0x6000;  // rem: the kernel wrote the time left here
  auto r = resumable_regs(in, false);
  EXPECT_EQ(r.rdi, 0x6000u);
  EXPECT_EQ(r.rax, static_cast<unsigned long long>(SYS_nanosleep));
  EXPECT_EQ(r.rip, 0x1000u);
}

TEST(ResumableRegs, ClockNanosleepRelativeUsesRemAbsoluteIsUntouched) {
  auto rel = in_syscall(SYS_clock_nanosleep, -516);
  rel.rsi = 0;
  rel.rdx = 0x5000;
  rel.r10 = 0x6000;
  EXPECT_EQ(resumable_regs(rel, false).rdx, 0x6000u);
  auto abs = rel;
  abs.rsi = TIMER_ABSTIME;
  EXPECT_EQ(resumable_regs(abs, false).rdx, 0x5000u);
}

TEST(ResumableRegs, EpollEintrFromTheStopIsReissuedUnlessASignalIsDue) {
  auto in = in_syscall(SYS_epoll_wait, -EINTR);
  EXPECT_EQ(resumable_regs(in, false).rip, 0x1000u);
  auto kept = resumable_regs(in, true);
  EXPECT_EQ(kept.rip, 0x1002u);
  EXPECT_EQ(static_cast<long>(kept.rax), -EINTR);
}

TEST(ResumableRegs, SemopAndTimedSocketEintrAreReissuedButNotConnect) {
  for (long nr : {static_cast<long>(SYS_semop), static_cast<long>(SYS_semtimedop),
                  static_cast<long>(SYS_recvfrom), static_cast<long>(SYS_rt_sigtimedwait)}) {
    auto r = resumable_regs(in_syscall(nr, -EINTR), false);
    EXPECT_EQ(r.rip, 0x1000u) << nr;
    EXPECT_EQ(r.rax, static_cast<unsigned long long>(nr));
  }
  auto connect = resumable_regs(in_syscall(SYS_connect, -EINTR), false);
  EXPECT_EQ(connect.rip, 0x1002u);
  EXPECT_EQ(static_cast<long>(connect.rax), -EINTR);
}

TEST(ResumableRegs, CompletedCallsAndUserCodeAreLeftAlone) {
  auto done = resumable_regs(in_syscall(SYS_read, 17), false);
  EXPECT_EQ(done.rip, 0x1002u);
  EXPECT_EQ(done.rax, 17u);
  user_regs_struct user{};
  user.orig_rax = static_cast<unsigned long long>(-1);
  user.rip = 0x4242;
  EXPECT_EQ(resumable_regs(user, false).rip, 0x4242u);
}

}  // namespace
}  // namespace vos::capture
