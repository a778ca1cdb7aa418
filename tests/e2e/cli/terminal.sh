#!/usr/bin/env bash
# e2e (test harness): a program on a terminal is checkpointed and restored onto another terminal
# (each a pseudo-terminal of script(1), with its own size): its terminal mode, foreground process
# group and a SIGWINCH for the new size must come with it (tests/e2e/tty_mode.c checks). Usage:
# terminal.sh PROGRAM (e2e_tty_mode).
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
PROG=$1
command -v script >/dev/null || { e2e_log "SKIP: script(1) (util-linux) is not installed"; exit 77; }
uniq=$$-$RANDOM

for group in shared-group own-group; do
  work="$W/$group"
  mkdir -p "$work"
  name="tty-$group-$uniq"
  E2E_NAMES+=("$name")
  # The first terminal is 40x100, the second 30x90.
  script -qec "stty rows 40 cols 100; $(printf '%q ' "$VOS" run --name "$name" -- "$PROG" "$work" "$group")" \
    /dev/null </dev/null >"$W/first-$group.log" 2>&1 &
  first=$!
  E2E_BG_PIDS+=("$first")
  e2e_wait_file "$work/ready" 20 "$group: start on the first terminal"
  sleep 0.3
  e2e_checkpoint "$name" "$W/img-$group" --kill
  e2e_wait_pid "$first" 10 "$group: the first terminal's session"
  script -qec "stty rows 30 cols 90; $(printf '%q ' "$VOS" restore "$IMG")" \
    /dev/null </dev/null >"$W/second-$group.log" 2>&1 &
  second=$!
  E2E_BG_PIDS+=("$second")
  sleep 1
  echo "30 90" >"$work/size"
  e2e_wait_file "$work/result" 20 "$group: result on the second terminal" "$name"
  e2e_expect_pass "$work/result" "$group"
  e2e_wait_pid "$second" 10 "$group: the second terminal's session"
  e2e_log "ok: $group: mode, foreground group and new size on the second terminal"
done
e2e_log "PASS"
