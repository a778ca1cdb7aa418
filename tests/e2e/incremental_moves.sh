#!/usr/bin/env bash
# e2e (runs in the test harness): an incremental checkpoint after the program moved 32 MiB with
# mremap (and grew it by 8 MiB) stores only the new 8 MiB, and both images restore to a program
# that finds every word (moving_memory.c).
# usage: incremental_moves.sh PROGRAM
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_setup

PROG=$1
WORK=$W/work
IMAGES=$W/images
mkdir "$WORK" "$IMAGES"
NAME=e2e-moves-$$-$RANDOM


e2e_vos_run "$NAME" "$W/run.log" "$PROG" "$WORK"
e2e_wait_file "$WORK/ready" 20 "moving memory" "$NAME"
e2e_checkpoint_json "$NAME" "$IMAGES" --incremental
IMG1=$IMG
touch "$WORK/move"
e2e_wait_file "$WORK/moved" 20 "the move" "$NAME"
# A live checkpoint (pre-copy rounds, then the freeze), then one with --kill (all while frozen).
e2e_checkpoint_json "$NAME" "$IMAGES" --incremental
IMG2=$IMG
[[ $(e2e_field parent) == "$IMG1" ]] || e2e_die "second checkpoint should build on $IMG1: $J"
# 8 MiB are new (2048 pages); the 32 MiB moved (8192 pages) must be inherited, not stored.
pages=$(e2e_field pages)
((pages < 3072)) || e2e_die "the second image stored $pages pages: the moved 32 MiB again? $J"
(($(e2e_field pages_inherited) >= 8192)) || e2e_die "the moved pages were not inherited: $J"
e2e_log "after the move: $pages pages stored, $(e2e_field pages_inherited) inherited"
e2e_checkpoint_json "$NAME" "$IMAGES" --incremental --kill
IMG3=$IMG
e2e_wait_gone "$NAME" 5 "checkpoint --kill"
[[ $(e2e_field parent) == "$IMG2" ]] || e2e_die "third checkpoint should build on $IMG2: $J"
(($(e2e_field pages) < 1024)) || e2e_die "the third image stored $(e2e_field pages) pages: $J"

# Restored from the first image (before the move), the program moves its memory again first.
touch "$WORK/stop"
for img in "$IMG3" "$IMG2" "$IMG1"; do
  rm -f "$WORK/result"
  e2e_restore_wait "$img" "$W/restore.log"
  ((WAIT_RC == 0)) || e2e_die "restore of $img exited $WAIT_RC: $(tail -3 "$W/restore.log")"
  e2e_expect_pass "$WORK/result" "restore of $(basename "$img")"
done
e2e_log "PASS: moved memory inherited and restored"
