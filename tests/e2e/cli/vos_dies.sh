#!/usr/bin/env bash
# e2e (test harness): vos failing never takes the program with it. Each vos process is killed
# (SIGKILL) at several moments of a checkpoint and of a restore:
#   - the keeper while the pre-copy runs, while the program is frozen, while the image is written
#     (and with --kill while frozen): the program runs on with its data intact, the next
#     `vos checkpoint` starts a new keeper, removes the dead one's temporary image and works;
#   - the `vos checkpoint` command: the checkpoint is called off, the program runs on;
#   - the keeper while a restore builds the process: no half-made program is left, the image
#     restores again;
#   - the `vos restore` command while it stands in for the program: the program runs on, under
#     vos (listed, checkpointable);
#   - the keeper while a lazy restore serves memory: the program, which cannot run without that
#     memory, is ended at once (never left to read zeros), and `vos restore` says why.
# (Killing the namespace's init ends the program: the one documented exception.)
# The moments are made exact by VOS_TEST_PAUSE_AT, which stops vos 3 s at the named point.
set -euo pipefail
[[ -n ${E2E_TRACE:-} ]] && set -x
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
cd "$W"

uniq=$$-$RANDOM

# ps_field NAME KEY: that field of NAME's vos ps --json entry.
ps_field() {
  "$VOS" ps --json | "$E2E_PYTHON" -c 'import json, sys
for e in json.load(sys.stdin):
    if e["name"] == sys.argv[1]:
        print(e[sys.argv[2]])' "$1" "$2"
}

# A program that keeps writing its memory while checkpointed: the image and the program must
# both stay right when vos dies anywhere.
name="holder-$uniq"
e2e_run_data_holder "$name" 64
for point in precopy frozen writing; do
  keeper=$(ps_field "$name" keeper_pid)
  pid=$(ps_field "$name" pid)
  VOS_TEST_PAUSE_AT=$point "$VOS" checkpoint "$name" --dir "$W/img" >"$W/ck-$point.log" 2>&1 &
  ck=$!
  E2E_BG_PIDS+=("$ck")
  sleep 1.5  # the keeper is now stopped 3 s at $point
  ls "$W"/img/*.tmp.* >/dev/null 2>&1 || e2e_die "$point: no temporary image while writing"
  kill -KILL "$keeper"
  e2e_wait_pid "$ck" 10 "vos checkpoint after its keeper died at $point"
  ((WAIT_RC != 0)) || e2e_die "$point: vos checkpoint succeeded although its keeper died"
  kill -0 "$pid" 2>/dev/null || e2e_die "$point: the program died with its keeper"
  grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_die "$point: program still traced"
  e2e_data_check "keeper killed at $point"
  [[ $("$VOS" ps) == *"keeper died"* ]] || e2e_die "$point: vos ps does not say the keeper died"
  e2e_checkpoint "$name" "$W/img"
  grep -q "a new one took over" "$W/checkpoint.log" || e2e_die "$point: no new keeper said so"
  grep -q "removed .*tmp.$keeper" "$W/checkpoint.log" ||
    e2e_die "$point: the dead checkpoint's temporary image was not removed"
  ! ls "$W"/img/*.tmp.* >/dev/null 2>&1 || e2e_die "$point: a temporary image is left"
  [[ $(ps_field "$name" keeper_pid) != "$keeper" ]] || e2e_die "$point: same keeper pid"
  e2e_data_check "checkpoint by the new keeper after $point"
  mv "$IMG" "$W/good-$point.vos"
  : >"$W/checkpoint.log"
  e2e_log "ok: keeper killed at $point; program intact; next checkpoint by a new keeper"
done

# --kill, keeper killed while the program is frozen: it runs on as if no checkpoint was asked.
keeper=$(ps_field "$name" keeper_pid)
VOS_TEST_PAUSE_AT=frozen "$VOS" checkpoint "$name" --dir "$W/img" --kill >"$W/ck-kill.log" 2>&1 &
ck=$!
E2E_BG_PIDS+=("$ck")
sleep 1.5
kill -KILL "$keeper"
e2e_wait_pid "$ck" 10 "vos checkpoint --kill after its keeper died"
e2e_data_check "keeper killed while frozen for --kill"
e2e_log "ok: keeper killed while frozen for --kill; the program runs on"

# The command killed: the keeper calls the checkpoint off; no image, program as it was.
VOS_TEST_PAUSE_AT=writing "$VOS" checkpoint "$name" --dir "$W/cancelled" >/dev/null 2>&1 &
ck=$!
sleep 1.5
kill -KILL "$ck"
wait "$ck" 2>/dev/null || true
sleep 2.5
! ls "$W"/cancelled/*.vos* >/dev/null 2>&1 || e2e_die "a killed vos checkpoint left $(ls "$W/cancelled")"
e2e_data_check "vos checkpoint killed while writing"
e2e_log "ok: vos checkpoint killed while writing: called off, nothing left"

# The images written by the new keepers restore intact (the original is ended first).
e2e_checkpoint "$name" "$W/img" --kill
e2e_restore_and_check "$W/good-frozen.vos" "image taken after a keeper died"

# The keeper killed while a restore builds the process: nothing half-made is left, the image
# still restores.
"$VOS" checkpoint "$name" --dir "$W/img" --kill >/dev/null 2>>"$W/checkpoint.log" ||
  e2e_die "checkpoint --kill before the restore test failed"
img=$(ls -t "$W"/img/"$name"-*.vos | head -1)
VOS_TEST_PAUSE_AT=restore "$VOS" restore "$img" --detach </dev/null >"$W/rs.log" 2>&1 &
rs=$!
E2E_BG_PIDS+=("$rs")
sleep 1.5
rkeeper=''
for p in $(pgrep -f "vos restore $img" || true); do
  [[ $(cat "/proc/$p/comm" 2>/dev/null) == vos-keeper ]] && rkeeper=$p
done
[[ -n $rkeeper ]] || e2e_die "no keeper found for the restore"
kill -KILL "$rkeeper"
e2e_wait_pid "$rs" 10 "vos restore after its keeper died"
((WAIT_RC != 0)) || e2e_die "vos restore succeeded although its keeper died mid-way"
sleep 0.2
left=$(grep -alsF -- "$W/work" /proc/[0-9]*/cmdline || true)
[[ -z $left ]] || e2e_die "a half-made program is left: $left: $(cat $left | tr "\\0" " ")"
e2e_restore_and_check "$img" "image restored again after a keeper died mid-restore"
e2e_log "ok: keeper killed mid-restore: nothing left, image restores again"

# `vos restore` killed while standing in for the program: the program runs on under vos.
"$VOS" checkpoint "$name" --dir "$W/img" --kill >/dev/null 2>>"$W/checkpoint.log"
img=$(ls -t "$W"/img/"$name"-*.vos | head -1)
"$VOS" restore "$img" </dev/null >"$W/fg.log" 2>&1 &
fg=$!
E2E_BG_PIDS+=("$fg")
e2e_data_check "foreground restore"
kill -KILL "$fg"
wait "$fg" 2>/dev/null || true
e2e_data_check "vos restore killed while standing in for the program"
[[ -n $(e2e_ps_pids "$name") ]] || e2e_die "the program is no longer listed after vos restore died"
e2e_log "ok: vos restore killed: the program runs on under vos"

# The keeper killed while it serves a lazy restore's memory: the program is ended, loudly.
"$VOS" checkpoint "$name" --dir "$W/img" --kill >/dev/null 2>>"$W/checkpoint.log"
img=$(ls -t "$W"/img/"$name"-*.vos | head -1)
# (stderr through a pipe: vos never writes into a regular file, which may be the program's own)
(VOS_TEST_PAUSE_AT=lazy "$VOS" restore "$img" --lazy </dev/null 2>&1 | cat >"$W/lazy.log") &
lz=$!
E2E_BG_PIDS+=("$lz")
sleep 1
keeper=$(ps_field "$name" keeper_pid)
pid=$(ps_field "$name" pid)
kill -KILL "$keeper"
e2e_wait_pid "$lz" 10 "vos restore --lazy after its keeper died"
((WAIT_RC != 0)) || e2e_die "vos restore --lazy exited 0 although the program had to be ended"
! kill -0 "$pid" 2>/dev/null || e2e_die "the lazily restored program runs on without its memory"
grep -q "keeper" "$W/lazy.log" || e2e_die "vos restore --lazy did not say what happened: $(cat "$W/lazy.log")"
e2e_log "ok: keeper killed while serving lazy memory: program ended, $(tail -1 "$W/lazy.log")"
e2e_log "PASS"
