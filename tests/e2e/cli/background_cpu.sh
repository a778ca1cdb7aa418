#!/usr/bin/env bash
# e2e (test harness): while a live checkpoint works beside the running program, vos's threads
# are in the background scheduling class (SCHED_IDLE), so that they take no CPU the program
# wants; while the program is frozen, and once the checkpoint is done, none is. The moments are
# made exact by VOS_TEST_PAUSE_AT (vos stops 3 s there): `precopy` (the program runs), `frozen`
# (it is stopped), `writing` (it runs again while the image is written). The felt pause this is
# for is measured by bench/run.py --parts felt, not here: timing is not a test on a shared VM.
set -euo pipefail
[[ -n ${E2E_TRACE:-} ]] && set -x
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
if (($(id -u) != 0)); then
  e2e_log "SKIP: vos's threads come back from SCHED_IDLE only with CAP_SYS_NICE (run as root)"
  exit 77
fi

name=e2e-background-cpu-$$-$RANDOM
e2e_vos_run "$name" "$W/run.log" "$E2E_PYTHON" -c '
import time
data = bytearray(64 << 20)  # some memory to copy
for i in range(0, len(data), 4096):
    data[i] = i % 251
time.sleep(120)'
keeper=""
for ((i = 0; i < 100; i++)); do
  keeper=$("$VOS" ps --json | "$E2E_PYTHON" -c 'import json, sys
print(next((str(p.get("keeper_pid", "")) for p in json.load(sys.stdin) if p["name"] == sys.argv[1]), ""))' "$name")
  [[ -n $keeper ]] && break
  sleep 0.05
done
[[ -n $keeper ]] || e2e_die "no keeper pid for $name in vos ps --json"
sleep 0.5

# idle_threads: how many of the keeper's threads are SCHED_IDLE (policy 5, field 41 of stat).
idle_threads() {
  local n=0 f stat
  for f in /proc/"$keeper"/task/*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    stat=${stat##*) }  # fields from 3 on; the name may hold spaces
    read -ra fields <<<"$stat"
    ((fields[38] == 5)) && n=$((n + 1))
  done
  echo "$n"
}

(($(idle_threads) == 0)) || e2e_die "keeper threads are idle-class before any checkpoint"
for point in precopy frozen writing; do
  VOS_TEST_PAUSE_AT=$point "$VOS" checkpoint "$name" --dir "$W/img-$point" --json \
    >"$W/ck-$point.json" 2>"$W/ck-$point.log" &
  ck=$!
  E2E_BG_PIDS+=("$ck")
  sleep 1.5  # vos is now stopped 3 s at $point
  idle=$(idle_threads)
  e2e_log "$point: $idle idle-class keeper thread(s)"
  if [[ $point == frozen ]]; then
    ((idle == 0)) || e2e_die "$point: $idle keeper thread(s) idle-class while the program is stopped"
  else
    ((idle > 0)) || e2e_die "$point: no keeper thread is idle-class while the program runs"
  fi
  e2e_wait_pid "$ck" 20 "vos checkpoint paused at $point"
  ((WAIT_RC == 0)) || e2e_die "$point: vos checkpoint failed: $(cat "$W/ck-$point.log")"
  grep -q '"background_cpu":"idle"' "$W/ck-$point.json" ||
    e2e_die "$point: the checkpoint does not say its threads were idle-class: $(cat "$W/ck-$point.json")"
  (($(idle_threads) == 0)) || e2e_die "$point: keeper threads stay idle-class after the checkpoint"
done
e2e_log "PASS: vos's threads are idle-class exactly while they work beside the running program"
