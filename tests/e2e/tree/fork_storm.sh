#!/usr/bin/env bash
# e2e process tree (runs in the test harness): a shell that forks and execs without pause (each
# turn of its loop runs /bin/true, then appends the turn's number to a log it keeps open) is
# checkpointed live 20 times in a row; after each checkpoint the running program is killed and
# restored from that image with --files=rewind, so the log is cut back to where the image was
# taken. A child caught
# half-made or missed by the freeze, or a restore that is not the moment of its image, shows as
# a gap or a repeat in the log, which must count 1, 2, 3... to the end.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

CYCLES=${E2E_CYCLES:-20}
NAME=e2e-forks-$$-$RANDOM
# shellcheck disable=SC2016  # expanded by that sh
# The log stays open (fd 3, inherited by every child), so that the image records its size.
e2e_vos_run "$NAME" "$W/run.log" sh -c 'exec 3>>"$0"; i=0; while :; do i=$((i+1)); /bin/true; echo $i >&3; done' \
  "$W/turns.log"
host_pids() {
  "$VOS" ps --json | python3 -c 'import json, sys
for p in json.load(sys.stdin):
    if p["name"] == sys.argv[1]:
        print(" ".join(str(q["host_pid"]) for q in p["processes"]))' "$NAME"
}
for ((c = 1; c <= CYCLES; c++)); do
  sleep 0.1
  e2e_checkpoint "$NAME" "$W/img"
  pids=$(host_pids)
  [[ -n $pids ]] || e2e_die "cycle $c: the program is gone after a live checkpoint"
  # shellcheck disable=SC2086  # a list of pids
  kill -9 $pids 2>/dev/null || true
  e2e_wait_gone "$NAME" 10 "cycle $c: the killed program"
  "$VOS" restore --detach --files=rewind "$IMG" </dev/null >>"$W/restore.log" 2>&1 ||
    e2e_die "cycle $c: restore failed: $(tail -1 "$W/restore.log")"
  rm -f "$IMG"
done
sleep 0.2
pids=$(host_pids)
# shellcheck disable=SC2086
kill -9 $pids 2>/dev/null || true
e2e_wait_gone "$NAME" 10 "the program at the end"
turns=$(wc -l <"$W/turns.log")
python3 - "$W/turns.log" <<'PY' || e2e_die "the log does not count 1, 2, 3...: see turns.log"
import sys
with open(sys.argv[1]) as f:
    lines = f.read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
for n, line in enumerate(lines, 1):
    if line != str(n):
        # (The last line may be cut short by the final kill.)
        if n == len(lines) and str(n).startswith(line):
            break
        sys.exit("line %d is %r" % (n, line))
PY
((turns > CYCLES * 10)) || e2e_die "only $turns turns in $CYCLES cycles: the program barely ran"
e2e_log "PASS: $CYCLES live checkpoints and restores of a forking shell, $turns turns in order"
