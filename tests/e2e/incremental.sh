#!/usr/bin/env bash
# e2e (runs in the test harness): incremental checkpoints of a program whose memory keeps
# changing (incremental_writer.c: rewritten, discarded, remapped and moved pages, a written
# private file mapping, pages a thread rewrites without pause during every pre-copy round). Four checkpoints with --incremental / --parent while it runs, the last
# with --kill; then every image of the chain is restored and the program checks every page;
# `vos merge` makes a standalone image that restores without its parents; an image whose parent
# is gone is refused with the parent's name.
# usage: incremental.sh PROGRAM
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_setup

PROG=$1
WORK=$W/work
IMAGES=$W/images
mkdir "$WORK" "$IMAGES"
NAME=e2e-incremental-$$-$RANDOM

# ck ARGS...: checkpoint with --json; sets J (the reply) and IMG.
ck() { e2e_checkpoint_json "$NAME" "$IMAGES" "$@"; }
field() { e2e_field "$1"; }
# expect_delta PARENT WHAT: the last checkpoint (J) built on PARENT and stored few pages, beyond
# memory it says was not tracked (this program maps memory anew between checkpoints, and moves
# memory with mremap, which a pre-copy stores in full: docs/limits.md).
expect_delta() {
  [[ $(field parent) == "$1" ]] || e2e_die "$2 should build on $1: $J"
  (($(field pages_inherited) > 0)) || e2e_die "$2 inherited nothing: $J"
  local untracked_kib
  untracked_kib=$(field note | sed -n 's/.*[^0-9]\([0-9][0-9]*\) KiB in [0-9]* area(s) not tracked.*/\1/p')
  (($(field pages) * 2 < FULL_PAGES + ${untracked_kib:-0} / 2)) ||
    e2e_die "$2 stored $(field pages) pages of $FULL_PAGES: not incremental: $J"
}

# restore_pass IMAGE WHAT [RESTORE ARGS...]: the program, restored from IMAGE, must find every
# page right.
restore_pass() {
  rm -f "$WORK/result"
  e2e_restore_wait "$1" "$W/restore.log" "${@:3}"
  ((WAIT_RC == 0)) || e2e_die "$2: vos restore exited $WAIT_RC: $(tail -3 "$W/restore.log")"
  e2e_expect_pass "$WORK/result" "$2"
}

e2e_vos_run "$NAME" "$W/run.log" "$PROG" "$WORK"
e2e_wait_file "$WORK/ready" 20 "incremental" "$NAME"

ck --incremental
IMG1=$IMG
[[ -z $(field parent) ]] || e2e_die "first incremental checkpoint has a parent: $J"
FULL_PAGES=$(field pages)
sleep 0.3
ck --incremental
IMG2=$IMG
expect_delta "$IMG1" "second checkpoint"
sleep 0.3
# --parent must name the last image; anything else is refused and the program runs on.
if "$VOS" checkpoint "$NAME" --dir "$IMAGES" --parent "$IMG1" >/dev/null 2>"$W/wrong-parent.log"; then
  e2e_die "--parent with an older image was accepted"
fi
grep -q "not the last checkpoint" "$W/wrong-parent.log" ||
  e2e_die "unclear --parent refusal: $(cat "$W/wrong-parent.log")"
ck --parent "$IMG2"
IMG3=$IMG
[[ $(field parent) == "$IMG2" ]] || e2e_die "third checkpoint should build on $IMG2: $J"
sleep 0.3
ck --incremental --kill
IMG4=$IMG
[[ $(field parent) == "$IMG3" ]] || e2e_die "final checkpoint should build on $IMG3: $J"
e2e_wait_gone "$NAME" 5 "checkpoint --kill"

"$VOS" inspect "$IMG4" >"$W/inspect.txt" || e2e_die "vos inspect $IMG4 failed"
grep -q "$(basename "$IMG3")" "$W/inspect.txt" || e2e_die "vos inspect does not show the parent"

# Restored from an incremental image, the program's next incremental image builds on the image
# it came from (writes are tracked from the restore on), not on a new full one.
"$VOS" restore "$IMG4" --detach </dev/null >"$W/restore-detached.log" 2>&1 ||
  e2e_die "vos restore --detach $IMG4: $(tail -3 "$W/restore-detached.log")"
sleep 0.3
ck --incremental
IMG5=$IMG
expect_delta "$IMG4" "first checkpoint after the restore"
sleep 0.3
ck --incremental --kill
IMG6=$IMG
[[ $(field parent) == "$IMG5" ]] || e2e_die "second checkpoint after the restore should build on $IMG5: $J"
e2e_wait_gone "$NAME" 5 "checkpoint --kill after the restore"

# After a lazy restore writes are not tracked (its memory arrives through the lazy server's own
# userfaultfd): the next incremental image compares every page with the restored image's copy and
# still stores only what changed.
RUN_DIR=$(e2e_run_dir)
"$VOS" restore "$IMG4" --lazy --detach </dev/null >"$W/restore-lazy.log" 2>&1 ||
  e2e_die "vos restore --lazy --detach $IMG4: $(tail -3 "$W/restore-lazy.log")"
e2e_wait_file "$RUN_DIR/$NAME.lazy.json" 30 "lazy restore to finish" "$NAME"
grep -q '"error":""' "$RUN_DIR/$NAME.lazy.json" ||
  e2e_die "lazy restore failed: $(cat "$RUN_DIR/$NAME.lazy.json")"
sleep 0.3
ck --incremental
IMG7=$IMG
[[ $(field parent) == "$IMG4" ]] || e2e_die "first checkpoint after the lazy restore should build on $IMG4: $J"
# Most pages must be found unchanged and kept.
read -r kept compared < <(field note | sed -n 's/.*(\([0-9]*\) of \([0-9]*\) pages unchanged).*/\1 \2/p') || true
[[ -n ${kept:-} ]] || e2e_die "no note that pages were compared: $J"
((kept * 2 > compared && kept * 2 > FULL_PAGES)) ||
  e2e_die "only $kept of $compared pages kept after the lazy restore: $J"
sleep 0.3
ck --incremental --kill
IMG8=$IMG
[[ $(field parent) == "$IMG7" ]] || e2e_die "second checkpoint after the lazy restore should build on $IMG7: $J"
e2e_wait_gone "$NAME" 5 "checkpoint --kill after the lazy restore"

# The program checks all its memory as soon as it finds <work>/stop after a restore.
touch "$WORK/stop"
for img in "$IMG8" "$IMG7" "$IMG6" "$IMG5" "$IMG4" "$IMG2" "$IMG1" "$IMG3"; do
  restore_pass "$img" "restore of $(basename "$img")"
done
restore_pass "$IMG4" "lazy restore of $(basename "$IMG4")" --lazy

"$VOS" merge "$IMG4" -o "$W/merged.vos" >"$W/merge.log" 2>&1 || e2e_die "vos merge: $(cat "$W/merge.log")"
for img in "$IMG1" "$IMG2" "$IMG3"; do mv "$img" "$img.away"; done
if "$VOS" restore "$IMG4" </dev/null >"$W/missing.log" 2>&1; then
  e2e_die "restore of an image whose parents are gone succeeded"
fi
grep -qE "parent image .*($(basename "$IMG1")|$(basename "$IMG2")|$(basename "$IMG3"))" \
  "$W/missing.log" || e2e_die "the refusal does not name the missing parent: $(cat "$W/missing.log")"
restore_pass "$W/merged.vos" "restore of the merged image"
e2e_log "PASS"
