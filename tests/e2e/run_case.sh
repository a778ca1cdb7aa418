#!/usr/bin/env bash
# Driver for one e2e case (runs in the test harness; drives the vos command line).
#
# usage: run_case.sh MODE PROGRAM [ARGS...]
#   kill-restore     checkpoint --kill ~0.3 s after ready, restore, wait: exit 0 and PASS
#   kill-restore-lazy  the same with vos restore --lazy (memory copied in on first touch)
#                    (both: with E2E_MAX_RESTORE_MS=N, restored with --detach --json, which must
#                    report restore_ms under N; then the program's result is awaited)
#   leave-running    checkpoint without --kill; the original must PASS, then the image must
#                    restore to PASS as well (the original's result is moved away first)
#   restore-twice    checkpoint --kill, restore to PASS, restore the same image again to PASS
#   cycles N         checkpoint --kill and restore --detach N times in a row, 0.2 s apart; then
#                    create <work>/stop and wait for PASS
#   direct           run PROGRAM without vos: it must PASS (checks the case itself)
#   sabotage         run PROGRAM without vos with E2E_SABOTAGE=1: it must report FAIL (proves
#                    the case can fail)
# PROGRAM is called as `PROGRAM WORKDIR [ARGS...]` with an empty WORKDIR (see e2e_common.h).
# In leave-running and restore-twice the image is restored after the program (or its first
# restore) ran on, so PROGRAM must write nothing to stdout/stderr after ready: they are files
# here, and vos refuses to restore a regular file whose size changed since the checkpoint.
# Exit status: 0 pass, 1 fail, 77 skip (when vos run says it cannot create namespaces, or the
# case says in <work>/skip that it cannot test what it is for on this machine: e2e_common.h).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: $0 kill-restore|kill-restore-lazy|leave-running|restore-twice|direct|sabotage PROGRAM [ARGS...]" >&2
  echo "       $0 cycles N PROGRAM [ARGS...]" >&2
  exit 2
}

(($# >= 2)) || usage
MODE=$1
shift
CYCLES=0
if [[ $MODE == cycles ]]; then
  [[ ${1:-} =~ ^[1-9][0-9]*$ ]] || usage
  CYCLES=$1
  shift
fi
(($# >= 1)) || usage
PROG=$1
shift
[[ -x $PROG ]] || { echo "run_case.sh: $PROG is not an executable" >&2; exit 2; }

if [[ $MODE == direct || $MODE == sabotage ]]; then
  VOS=true  # not used; keeps e2e_setup from looking for vos
fi
e2e_setup
WORK=$W/work
mkdir "$WORK"
NAME=e2e-$(basename "$PROG")-$$-$RANDOM
RESULT=$WORK/result

skip_if_the_case_says_so() {
  if [[ -f $WORK/skip ]]; then
    e2e_log "SKIP: $(basename "$PROG"): $(cat "$WORK/skip")"
    exit 77
  fi
}

# Starts the program under vos and waits until it has set up its state.
start_program() {
  e2e_vos_run "$NAME" "$W/run.log" "$PROG" "$WORK" "$@"
  e2e_wait_file "$WORK/ready" 20 "$MODE" "$NAME"
  skip_if_the_case_says_so
  sleep 0.3
}

# With E2E_MAX_RESTORE_MS: `vos restore --detach --json [ARGS]`, which must say the program runs
# again within that many milliseconds (restore_ms: what the user waits for); each time the
# keeper must report that all its memory came in (after --lazy) and the program must PASS. The
# machine may be shared: one slower start is tried once more, the second must be in time.
restore_detached_in_time() {
  local try
  for try in 1 2; do
    restore_detached_once "$@"
    if python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))' \
      "$RESTORE_MS" "$E2E_MAX_RESTORE_MS"; then
      return 0
    fi
    e2e_log "restore took $RESTORE_MS ms to running, over $E2E_MAX_RESTORE_MS ms (try $try of 2)"
    mv "$RESULT" "$WORK/result.try$try"
  done
  e2e_die "restore took $RESTORE_MS ms to running twice in a row, want under $E2E_MAX_RESTORE_MS ms"
}

# One such restore; sets RESTORE_MS.
restore_detached_once() {
  local out rc=0 stats
  out=$("$VOS" restore "$IMG" --detach --json "$@" </dev/null 2>"$W/restore.log") || rc=$?
  ((rc == 0)) || e2e_die "vos restore --detach --json $* exited with status $rc"
  RESTORE_MS=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["restore_ms"])' "$out") ||
    e2e_die "vos restore --json printed '$out'; want an object with restore_ms"
  e2e_log "vos restore --detach --json $*: running again after $RESTORE_MS ms"
  if [[ " $* " == *" --lazy "* ]]; then
    # Read while the program runs: the keeper removes it when the program ends well.
    stats=$(e2e_run_dir)/$NAME.lazy.json
    e2e_wait_file "$stats" 20 "lazy server report" "$NAME"
    e2e_log "lazy server: $(cat "$stats")"
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["error"] != "")' \
      "$stats" || e2e_die "the lazy server failed: $(cat "$stats")"
    # E2E_MAX_ALREADY_IN_PAGES: at most that many stored pages were read before the program ran.
    if [[ -n ${E2E_MAX_ALREADY_IN_PAGES:-} ]]; then
      python3 -c 'import json, sys
sys.exit(json.load(open(sys.argv[1]))["already_in_pages"] > int(sys.argv[2]))' \
        "$stats" "$E2E_MAX_ALREADY_IN_PAGES" ||
        e2e_die "more than $E2E_MAX_ALREADY_IN_PAGES pages were read before the program ran"
    fi
  fi
  e2e_wait_file "$RESULT" 30 "restored program" "$NAME"
  e2e_expect_pass "$RESULT" "restored program"
  e2e_wait_gone "$NAME" 10 "restored program after its result"
}

case $MODE in
  direct | sabotage)
    if [[ $MODE == sabotage ]]; then
      E2E_SABOTAGE=1 "$PROG" "$WORK" "$@" </dev/null >"$W/program.log" 2>&1 &
    else
      "$PROG" "$WORK" "$@" </dev/null >"$W/program.log" 2>&1 &
    fi
    E2E_BG_PIDS+=("$!")
    e2e_wait_pid "$!" 30 "$PROG"
    # A sabotaged program may hand over to a child before it reports, so wait for the file.
    e2e_wait_file "$RESULT" 10 "$MODE"
    skip_if_the_case_says_so
    if [[ $MODE == direct ]]; then
      e2e_expect_pass "$RESULT" "direct run"
      ((WAIT_RC == 0)) || e2e_die "direct run: PASS but exit status $WAIT_RC"
    else
      grep -q '^FAIL: ' "$RESULT" || e2e_die "sabotaged run did not fail: $(cat "$RESULT")"
      e2e_log "sabotaged run failed as it should: $(cat "$RESULT")"
    fi
    ;;

  kill-restore | kill-restore-lazy)
    start_program "$@"
    e2e_checkpoint "$NAME" "$W/img" --kill
    [[ ! -e $RESULT ]] || e2e_die "the program finished before the checkpoint"
    restore_args=()
    [[ $MODE == kill-restore-lazy ]] && restore_args=(--lazy)
    if [[ -n ${E2E_MAX_RESTORE_MS:-} ]]; then
      restore_detached_in_time "${restore_args[@]}"
    else
      e2e_restore_wait "$IMG" "$W/restore.log" "${restore_args[@]}"
      if ((WAIT_RC != 0)) && [[ $MODE == kill-restore-lazy ]]; then
        # The keeper ends the program when its memory cannot be brought in; it says why here.
        e2e_log "lazy server: $(cat "$(e2e_run_dir)/$NAME.lazy.json" 2>&1)"
      fi
      ((WAIT_RC == 0)) || e2e_die "vos restore exited with status $WAIT_RC"
    fi
    e2e_expect_pass "$RESULT" "restored program"
    [[ ! -f $WORK/untested ]] || e2e_die "the restored program tested nothing: $(cat "$WORK/untested")"
    ;;

  leave-running)
    start_program "$@"
    e2e_checkpoint "$NAME" "$W/img"
    e2e_wait_file "$RESULT" 20 "original after checkpoint" "$NAME"
    e2e_expect_pass "$RESULT" "original after checkpoint"
    e2e_wait_gone "$NAME" 10 "original after its result"
    mv "$RESULT" "$WORK/result.original"
    e2e_restore_wait "$IMG" "$W/restore.log"
    ((WAIT_RC == 0)) || e2e_die "vos restore exited with status $WAIT_RC"
    e2e_expect_pass "$RESULT" "restored copy"
    ;;

  restore-twice)
    start_program "$@"
    e2e_checkpoint "$NAME" "$W/img" --kill
    e2e_restore_wait "$IMG" "$W/restore1.log"
    ((WAIT_RC == 0)) || e2e_die "first vos restore exited with status $WAIT_RC"
    e2e_expect_pass "$RESULT" "first restore"
    mv "$RESULT" "$WORK/result.first"
    e2e_restore_wait "$IMG" "$W/restore2.log"
    ((WAIT_RC == 0)) || e2e_die "second vos restore exited with status $WAIT_RC"
    e2e_expect_pass "$RESULT" "second restore"
    ;;

  cycles)
    start_program "$@"
    for ((i = 1; i <= CYCLES; i++)); do
      e2e_checkpoint "$NAME" "$W/img.$i" --kill
      rm -rf "$W/img.$((i - 1))"  # only the newest image is needed
      [[ ! -e $RESULT ]] || e2e_die "cycle $i: the program finished early: $(cat "$RESULT")"
      rc=0
      "$VOS" restore "$IMG" --detach </dev/null >"$W/restore.$i.log" 2>&1 || rc=$?
      ((rc == 0)) || e2e_die "cycle $i: vos restore --detach exited with status $rc"
      if ((i < CYCLES)); then
        sleep 0.2
      fi
    done
    touch "$WORK/stop"
    e2e_wait_file "$RESULT" 30 "after $CYCLES cycles" "$NAME"
    e2e_expect_pass "$RESULT" "after $CYCLES cycles"
    ;;

  *)
    usage
    ;;
esac
e2e_log "PASS: $MODE $(basename "$PROG")"
