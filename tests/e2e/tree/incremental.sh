#!/usr/bin/env bash
# e2e process tree (runs in the test harness): incremental checkpoints of a tree. A Python
# parent and three forked workers keep rewriting pages of their own memory
# (incremental_workers.py). Two live --incremental checkpoints and a last one with --kill: the
# second and third build on the one before and store fewer pages than they inherit. The last
# image, restored (its chain read through both parents), and the first one, restored again,
# each finish with the same memory hashes as an uninterrupted run. The second image restored
# once more: the first incremental checkpoint after that restore builds on it (writes tracked from
# the restore in every process), and its image too finishes as an uninterrupted run.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup
PROG="$(dirname "${BASH_SOURCE[0]}")/incremental_workers.py"
STEPS=500
python3 "$PROG" "$STEPS" "$W/reference" || e2e_die "uninterrupted run failed"

NAME=e2e-tree-incr-$$-$RANDOM
e2e_vos_run "$NAME" "$W/run.log" python3 "$PROG" "$STEPS" "$W/out"
sleep 1
e2e_checkpoint_json "$NAME" "$W/img" --incremental
first=$IMG
[[ $(e2e_field processes) == 4 ]] || e2e_die "the first image does not hold the 4 processes: $J"
[[ $(e2e_field note) == *"first incremental"* ]] || e2e_die "the first should say it is full: $J"
sleep 0.5
e2e_checkpoint_json "$NAME" "$W/img" --incremental
second=$IMG
[[ $(e2e_field parent) == "$first" ]] || e2e_die "the second image does not build on the first: $J"
(($(e2e_field pages_inherited) * 2 > $(e2e_field pages))) ||
  e2e_die "the second image inherited less than half its pages: $J"
sleep 0.5
e2e_checkpoint_json "$NAME" "$W/img" --incremental --kill
last=$IMG
e2e_wait_gone "$NAME" 5 "checkpoint --kill"
[[ $(e2e_field parent) == "$second" ]] || e2e_die "the last image does not build on the second: $J"
[[ ! -e $W/out ]] || e2e_die "the tree finished before the last checkpoint; raise STEPS"

e2e_restore_wait "$last" "$W/restore.log"
((WAIT_RC == 0)) || e2e_die "restored tree exited with status $WAIT_RC: $(cat "$W/restore.log")"
cmp -s "$W/reference" "$W/out" || e2e_die "memory after the restore of the last image differs from an uninterrupted run"
rm -f "$W"/out*
e2e_restore_wait "$first" "$W/restore-first.log" --name "$NAME-first"
((WAIT_RC == 0)) || e2e_die "restore of the first image exited $WAIT_RC: $(cat "$W/restore-first.log")"
cmp -s "$W/reference" "$W/out" || e2e_die "memory after the restore of the first image differs"

rm -f "$W"/out*
again=$NAME-again
"$VOS" restore "$second" --detach --name "$again" </dev/null >"$W/restore-again.log" 2>&1 ||
  e2e_die "vos restore --detach $second: $(tail -3 "$W/restore-again.log")"
sleep 0.5
e2e_checkpoint_json "$again" "$W/img" --incremental --kill
after=$IMG
e2e_wait_gone "$again" 5 "checkpoint --kill after the restore"
[[ $(e2e_field parent) == "$second" ]] ||
  e2e_die "the first checkpoint after the restore does not build on the restored image: $J"
(($(e2e_field pages_inherited) * 2 > $(e2e_field pages))) ||
  e2e_die "the checkpoint after the restore inherited less than half its pages: $J"
[[ ! -e $W/out ]] || e2e_die "the tree finished before the checkpoint after the restore"
e2e_restore_wait "$after" "$W/restore-after.log" --name "$again"
((WAIT_RC == 0)) || e2e_die "restore of $after exited $WAIT_RC: $(cat "$W/restore-after.log")"
cmp -s "$W/reference" "$W/out" || e2e_die "memory after the restore of $after differs"
e2e_log "PASS: incremental checkpoints of a tree of 4 processes, restored from the chain, and after a restore"
