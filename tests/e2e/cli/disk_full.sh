#!/usr/bin/env bash
# e2e (test harness): a checkpoint that runs out of disk space fails with a message that says so,
# leaves no file behind and leaves the program running untouched; the next checkpoint, to a disk
# with room, works and restores. Plain and --incremental (whose pre-copy writes on a second
# thread), and --kill (the program must survive a failed --kill checkpoint too).
# Needs root (it mounts a 16 MiB tmpfs); skipped otherwise.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup

if ((EUID != 0)); then
  e2e_log "SKIP: mounting a small tmpfs to fill needs root"
  exit 77
fi
FULL=$W/full
mkdir "$FULL"
mount -t tmpfs -o size=16m tmpfs "$FULL" || e2e_die "cannot mount a tmpfs on $FULL"
unmount_full() { umount "$FULL" 2>/dev/null || true; }
trap 'unmount_full; e2e_cleanup' EXIT

NAME=e2e-diskfull-$$-$RANDOM
e2e_run_data_holder "$NAME" 40  # data that does not compress

for flags in "" "--incremental" "--kill"; do
  rc=0
  # shellcheck disable=SC2086
  "$VOS" checkpoint "$NAME" --dir "$FULL" $flags >"$W/out.log" 2>"$W/err.log" || rc=$?
  ((rc != 0)) || e2e_die "checkpoint $flags into a 16 MiB disk succeeded: $(cat "$W/out.log")"
  grep -qi "no space left" "$W/err.log" ||
    e2e_die "checkpoint $flags failed without saying the disk is full: $(cat "$W/err.log")"
  left=$(find "$FULL" -mindepth 1 | head -3)
  [[ -z $left ]] || e2e_die "checkpoint $flags left files behind: $left"
  e2e_log "ok: checkpoint $flags -> $(head -c 200 "$W/err.log")"
  e2e_data_check "after the failed checkpoint $flags"
done

IMG=$("$VOS" checkpoint "$NAME" --dir "$W/img" --kill 2>"$W/ck.log") ||
  e2e_die "checkpoint to a disk with room failed: $(cat "$W/ck.log")"
e2e_wait_gone "$NAME" 5 "checkpoint --kill"
e2e_restore_and_check "$IMG" "after the restore"
e2e_log "PASS"
