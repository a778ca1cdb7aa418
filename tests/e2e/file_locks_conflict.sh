#!/usr/bin/env bash
# e2e (test harness): a restore must never let a program believe it holds a lock it does not.
# The file_locks case is checkpointed with --kill; right after, its locks are free (vos checkpoint
# returns once the killed program's descriptors are closed). Then another process takes, in turn,
# a POSIX lock, an OFD lock and a flock that conflict with the program's: each time vos restore
# must fail, naming the file and the lock, before the program runs. Once nothing is in the way
# the same image restores and the case passes. Last, a program holding a lease is refused at
# checkpoint, naming the fd and the lease, and runs on untouched.
# usage: file_locks_conflict.sh PATH/TO/e2e_file_locks
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_setup
PROG=$1
WORK=$W/work
mkdir "$WORK"
NAME=e2e-file-locks-conflict-$$-$RANDOM
e2e_vos_run "$NAME" "$W/run.log" "$PROG" "$WORK"
e2e_wait_file "$WORK/ready" 20 "file_locks start" "$NAME"
if [[ -f $WORK/skip ]]; then
  e2e_log "SKIP: $(cat "$WORK/skip")"
  exit 77
fi
sleep 0.3
e2e_checkpoint "$NAME" "$W/img" --kill

# holder KIND FILE START LEN: another process holding a write lock (KIND posix or ofd) on
# START..START+LEN-1 of FILE, or a flock(LOCK_SH) (KIND flock); its pid in HOLDER.
holder() {
  rm -f "$W/held"
  python3 - "$@" "$W/held" <<'EOF' >>"$W/holder.log" 2>&1 &
import fcntl, os, struct, sys, time
kind, path, start, length, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
fd = os.open(path, os.O_RDWR)
if kind == "posix":
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start, os.SEEK_SET)
elif kind == "ofd":
    lock = struct.pack("hhqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    fcntl.fcntl(fd, getattr(fcntl, "F_OFD_SETLK", 37), lock)
else:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
open(ready, "w").close()
time.sleep(120)
EOF
  HOLDER=$!
  E2E_BG_PIDS+=("$HOLDER")
  e2e_wait_file "$W/held" 10 "lock holder $*"
}

# Taken at once: nothing of the killed program holds them any more.
holder posix "$WORK/posix" 100 100
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true

expect_refused() {  # WHAT NEEDLE...
  local what=$1 rc=0 needle
  shift
  "$VOS" restore "$IMG" </dev/null >"$W/refused.log" 2>&1 || rc=$?
  ((rc != 0)) || e2e_die "$what: vos restore succeeded while another process held the lock"
  for needle in "$@"; do
    grep -qF -- "$needle" "$W/refused.log" ||
      e2e_die "$what: vos restore failed without saying '$needle': $(cat "$W/refused.log")"
  done
  [[ ! -e $WORK/result ]] || e2e_die "$what: the program ran: $(cat "$WORK/result")"
  e2e_gone "$NAME" || e2e_die "$what: the refused restore left the program listed"
  e2e_log "ok: $what: $(tail -1 "$W/refused.log")"
}

holder posix "$WORK/posix" 150 1
expect_refused "POSIX lock" "$WORK/posix" "POSIX write lock on bytes 100-199" "process $HOLDER's POSIX write lock on byte 150"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true

holder ofd "$WORK/ofd" 30 5
expect_refused "OFD lock" "$WORK/ofd" "OFD read lock from byte 20 to EOF" "an OFD write lock on bytes 30-34 of another open file description"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true

holder flock "$WORK/flock_ex" 0 0
expect_refused "flock" "$WORK/flock_ex" "flock LOCK_EX" "process $HOLDER's flock LOCK_SH"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true

e2e_restore_wait "$IMG" "$W/restore.log"
((WAIT_RC == 0)) || e2e_die "vos restore exited with status $WAIT_RC once the locks were free"
e2e_expect_pass "$WORK/result" "restored program"

LEASER=e2e-lease-$$-$RANDOM
touch "$W/leased"
e2e_vos_run "$LEASER" "$W/lease.log" python3 -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
open(sys.argv[2], "w").close()
time.sleep(60)' "$W/leased" "$W/lease-ready"
e2e_wait_file "$W/lease-ready" 20 "lease holder" "$LEASER"
rc=0
"$VOS" checkpoint "$LEASER" --dir "$W/img-lease" >/dev/null 2>"$W/lease-refused.log" || rc=$?
((rc != 0)) || e2e_die "a program holding a lease was checkpointed"
grep -qE "fd [0-9]+: lease \(F_SETLEASE\) read" "$W/lease-refused.log" ||
  e2e_die "the refusal does not name the lease's fd: $(cat "$W/lease-refused.log")"
! e2e_gone "$LEASER" || e2e_die "the refused checkpoint ended the lease holder"
e2e_log "ok: lease refused: $(cat "$W/lease-refused.log")"
e2e_log "PASS: file_locks_conflict"
