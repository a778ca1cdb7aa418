# shellcheck shell=bash disable=SC2034  # IMG and WAIT_RC are read by the sourcing script
# Shared shell helpers for the e2e drivers (run_case.sh, real/*.sh); runs in the test harness and
# drives the vos command line. Source it, then call e2e_setup.
#
# Conventions: $W is the case's temporary directory (kept on failure, removed on success), every
# log the case writes goes to $W/*.log and is printed when the case fails, and every program
# started under vos gets a name unique to this run so that the cleanup can find what is left.

VOS=${VOS:-vos}
IMG=''      # set by e2e_checkpoint for the caller
WAIT_RC=0  # set by e2e_wait_pid and e2e_restore_wait
E2E_NAMES=()    # names given to `vos run`
E2E_BG_PIDS=()  # background commands this shell started

e2e_log() { printf 'e2e: %s\n' "$*" >&2; }

e2e_setup() {
  W=$(mktemp -d "${TMPDIR:-/tmp}/vos-e2e.XXXXXX")
  trap e2e_cleanup EXIT
  trap 'exit 143' INT TERM
  unset E2E_SABOTAGE  # only `run_case.sh sabotage` sets it, for the program alone
  # For reading vos ps --json without jq; the interpreter itself, as launcher shims are slow.
  E2E_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
  if ! command -v "$VOS" >/dev/null; then  # a path or a name on PATH
    e2e_die "vos binary '$VOS' not found (set VOS or put vos on PATH)"
  fi
}

e2e_dump() {
  local f
  for f in "$W"/*.log "$W"/work/result*; do
    if [[ -s $f ]]; then
      printf -- '--- %s\n' "$f"
      tail -n 40 "$f"
    fi
  done
}

e2e_die() {
  e2e_log "FAIL: $*"
  e2e_dump >&2
  exit 1
}

# Pids that `vos ps --json` lists under NAME, one per line. Status 2 when vos ps fails or prints
# no readable JSON, 3 when neither jq nor python3 is there to read it: in both cases nothing is
# known, which is not the same as "not running".
e2e_ps_pids() {
  local json
  json=$("$VOS" ps --json 2>>"$W/ps.log") || return 2
  if command -v jq >/dev/null; then
    jq -r --arg n "$1" '.[] | select(.name == $n) | .pid' <<<"$json" 2>>"$W/ps.log" || return 2
  elif [[ -n ${E2E_PYTHON:-} ]]; then
    "$E2E_PYTHON" -c '
import json, sys
for p in json.loads(sys.stdin.read()):
    if p.get("name") == sys.argv[1]:
        print(p.get("pid", ""))' "$1" <<<"$json" 2>>"$W/ps.log" || return 2
  else
    return 3
  fi
}

# Succeeds when vos ps answers and no longer lists NAME.
e2e_gone() {
  local pids
  pids=$(e2e_ps_pids "$1") || return 1
  [[ -z $pids ]]
}

# e2e_wait_gone NAME SECONDS WHAT: NAME must leave vos ps (skipped when ps cannot be read here).
e2e_wait_gone() {
  local i pids st=0
  for ((i = 0; i < $2 * 20; i++)); do
    st=0
    pids=$(e2e_ps_pids "$1") || st=$?
    if ((st == 3)) || { ((st == 0)) && [[ -z $pids ]]; }; then
      return 0
    fi
    sleep 0.05
  done
  ((st != 2)) || e2e_die "$3: vos ps --json failed or printed no JSON array (see ps.log)"
  e2e_die "$3: '$1' still listed by vos ps after $2 s (pid ${pids//$'\n'/ })"
}

# e2e_vos_run NAME LOG PROGRAM [ARGS...]: starts PROGRAM detached under vos. Exits 77 (skip)
# only when vos itself says that it cannot create the namespaces it needs.
e2e_vos_run() {
  local name=$1 log=$2 rc=0
  shift 2
  E2E_NAMES+=("$name")
  "$VOS" run --name "$name" --detach -- "$@" </dev/null >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    if grep -qi 'namespace' "$log" &&
      grep -qiE 'not permitted|permission denied|EPERM|EACCES|not supported|ENOSYS|cannot create|unavailable' "$log"; then
      e2e_log "SKIP: vos run cannot create namespaces here: $(grep -i -m1 'namespace' "$log")"
      exit 77
    fi
    e2e_die "vos run --name $name failed with status $rc"
  fi
}

# e2e_run_data_holder NAME MIB: starts (e2e_vos_run) a python3 program holding MIB MiB of
# random-looking data that must survive checkpoints and restores; e2e_data_check WHAT then asks
# it (through $W/check) whether its data still has the digest it had at the start.
e2e_run_data_holder() {
  e2e_vos_run "$1" "$W/run.log" python3 -c 'import hashlib, os, sys, time
d, mib = sys.argv[1], int(sys.argv[2])
data = bytearray(os.urandom(1 << 20)) * mib
for i in range(0, len(data), 1 << 20):
    data[i:i + 8] = i.to_bytes(8, "little")  # no two MiB alike
digest = hashlib.sha256(data).hexdigest()
open(os.path.join(d, "ready"), "w").close()
while True:
    if os.path.exists(os.path.join(d, "check")):
        os.remove(os.path.join(d, "check"))
        ok = hashlib.sha256(data).hexdigest() == digest
        with open(os.path.join(d, "ok.tmp"), "w") as f:
            f.write("OK" if ok else "BAD")
        os.rename(os.path.join(d, "ok.tmp"), os.path.join(d, "ok"))
    time.sleep(0.02)' "$W" "$2"
  e2e_wait_file "$W/ready" 30 "program start" "$1"
}
# e2e_restore_and_check IMAGE WHAT: restores IMAGE (--detach) of the data holder, which must
# find its data intact.
e2e_restore_and_check() {
  "$VOS" restore "$1" --detach </dev/null >"$W/restore.log" 2>&1 ||
    e2e_die "$2: restore failed: $(cat "$W/restore.log")"
  e2e_data_check "$2"
}
e2e_data_check() {
  rm -f "$W/ok"
  touch "$W/check"
  e2e_wait_file "$W/ok" 30 "$1: program check" "${E2E_NAMES[-1]}"
  [[ $(cat "$W/ok") == OK ]] || e2e_die "$1: the program's data changed"
}

# e2e_wait_file PATH SECONDS WHAT [NAME]: waits for PATH; with NAME, fails early when the
# program leaves vos ps before writing it.
e2e_wait_file() {
  local path=$1 seconds=$2 what=$3 name=${4:-} i
  for ((i = 0; i < seconds * 20; i++)); do
    if [[ -e $path ]]; then
      return 0
    fi
    if [[ -n $name ]] && ((i % 20 == 19)) && e2e_gone "$name"; then
      [[ -e $path ]] && return 0
      e2e_die "$what: the program ($name) ended without writing $(basename "$path")"
    fi
    sleep 0.05
  done
  e2e_die "$what: no $(basename "$path") after $seconds s"
}

# e2e_checkpoint NAME DIR [--kill]: sets IMG to the image path vos printed.
# E2E_CHECKPOINT_FLAGS (e.g. --compress=zstd) are added to every checkpoint; with --compress=C
# the image must say codec C, and with E2E_MAX_STORED_PERCENT=P its page data must be stored in
# at most P% of its uncompressed size (proves compression happened, for compressible memory).
e2e_checkpoint() {
  local name=$1 dir=$2 out rc=0
  shift 2
  # shellcheck disable=SC2206  # word splitting of the flags is intended
  local extra=(${E2E_CHECKPOINT_FLAGS:-})
  set -- "$@" "${extra[@]}"
  out=$("$VOS" checkpoint "$name" --dir "$dir" "$@" 2>>"$W/checkpoint.log") || rc=$?
  ((rc == 0)) || e2e_die "vos checkpoint $name $* failed with status $rc"
  [[ -n $out && $out != *$'\n'* ]] ||
    e2e_die "vos checkpoint printed '$out'; want one line, the image path"
  [[ -e $out ]] || e2e_die "vos checkpoint printed $out, which does not exist"
  IMG=$out
  if [[ " $* " == *" --kill "* ]]; then
    e2e_wait_gone "$name" 5 "checkpoint --kill"
  fi
  if [[ " $* " =~ \ --compress=([a-z0-9]+)\  ]]; then
    e2e_check_compressed "$IMG" "${BASH_REMATCH[1]}"
  fi
}

# e2e_check_compressed IMAGE CODEC: vos inspect must report CODEC and, if
# E2E_MAX_STORED_PERCENT is set, stored page bytes within that percentage of the logical ones.
e2e_check_compressed() {
  local img=$1 codec=$2 info
  info=$("$VOS" inspect --json "$img" | python3 -c 'import json, sys
p = json.load(sys.stdin)["pages"]
print(p["codec"], p["stored_bytes"], p["logical_bytes"])') || e2e_die "vos inspect --json $img failed"
  read -r got stored logical <<<"$info"
  [[ $got == "$codec" ]] || e2e_die "image $img: codec '$got', want '$codec'"
  e2e_log "$codec image: $stored bytes stored for $logical bytes of pages"
  if [[ -n ${E2E_MAX_STORED_PERCENT:-} ]]; then
    ((stored * 100 <= logical * E2E_MAX_STORED_PERCENT)) ||
      e2e_die "$codec stored $stored of $logical page bytes, more than $E2E_MAX_STORED_PERCENT%"
  fi
}

# e2e_wait_pid PID SECONDS WHAT: waits for a background command; sets WAIT_RC to its status.
e2e_wait_pid() {
  local pid=$1 seconds=$2 what=$3 i
  for ((i = 0; i < seconds * 20; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      WAIT_RC=0
      wait "$pid" || WAIT_RC=$?
      return 0
    fi
    sleep 0.05
  done
  e2e_die "$what: still running after $seconds s"
}

# e2e_checkpoint_json NAME DIR ARGS...: `vos checkpoint NAME --dir DIR --json ARGS...`; sets J
# (the reply) and IMG (the image path). e2e_field KEY: that key of J ("" if null).
e2e_checkpoint_json() {
  local name=$1 dir=$2 rc=0
  shift 2
  J=$("$VOS" checkpoint "$name" --dir "$dir" --json "$@" 2>>"$W/checkpoint.log") || rc=$?
  ((rc == 0)) || e2e_die "vos checkpoint $* failed with status $rc: $(tail -1 "$W/checkpoint.log")"
  IMG=$(e2e_field image)
  # The pause is the sum of the stops, each listed.
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); s=j["stops_ms"]
sys.exit(0 if s and all(x >= 0 for x in s) and abs(sum(s) - j["pause_ms"]) < 1e-6 else 1)' "$J" ||
    e2e_die "stops_ms does not add up to pause_ms: $J"
}
e2e_field() {
  python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$J" "$1"
}

# e2e_run_dir: where vos keeps its registry and a lazy restore's NAME.lazy.json (as
# src/keeper/registry.cc decides).
e2e_run_dir() {
  if [[ -n ${VOS_RUN_DIR:-} ]]; then echo "$VOS_RUN_DIR"
  elif ((EUID == 0)); then echo /run/vos
  elif [[ -n ${XDG_RUNTIME_DIR:-} ]]; then echo "$XDG_RUNTIME_DIR/vos"
  else echo "/tmp/vos-$EUID"; fi
}

# e2e_restore_wait IMAGE LOG [RESTORE ARGS...]: `vos restore IMAGE` in the foreground mode, run
# as a background job so that a hang is reported (after E2E_RESTORE_TIMEOUT s, default 30)
# instead of waiting for the CTest timeout; sets WAIT_RC. E2E_RESTORE_FLAGS (e.g.
# --files=rewind, for a case whose files grow after the checkpoint) are added.
e2e_restore_wait() {
  # shellcheck disable=SC2206  # word splitting of the flags is intended
  local extra=(${E2E_RESTORE_FLAGS:-})
  "$VOS" restore "$1" "${@:3}" "${extra[@]}" </dev/null >"$2" 2>&1 &
  E2E_BG_PIDS+=("$!")
  e2e_wait_pid "$!" "${E2E_RESTORE_TIMEOUT:-30}" "vos restore $1"
}

# e2e_expect_pass RESULT_FILE WHAT
e2e_expect_pass() {
  [[ -f $1 ]] || e2e_die "$2: no result file $1"
  [[ "$(cat "$1"; echo .)" == $'PASS\n.' ]] || e2e_die "$2: $(cat "$1")"
}

e2e_kill_pid() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] && ((pid > 1 && pid != $$ && pid != BASHPID)) || return 0
  kill -KILL "$pid" 2>/dev/null || true
}

# On exit: kill what this case left running (only processes it can tell are its own), then
# remove $W if the case passed.
e2e_cleanup() {
  local rc=$? pid name f
  trap - EXIT
  for pid in "${E2E_BG_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && e2e_kill_pid "$pid"
  done
  if [[ -n ${W:-} ]]; then
    for name in "${E2E_NAMES[@]}"; do
      # A pid from vos ps is killed only if it is in a child pid namespace or mentions $W.
      for pid in $(e2e_ps_pids "$name" 2>/dev/null || true); do
        if { grep -q "^NSpid:.*[0-9][[:space:]]\+[0-9]" "/proc/$pid/status" ||
          tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$W"; } 2>/dev/null; then
          e2e_kill_pid "$pid"
        fi
      done
    done
    # Programs and vos helpers started with our paths in their command line.
    for f in $(grep -alsF -- "$W" /proc/[0-9]*/cmdline || true); do
      pid=${f#/proc/}
      e2e_kill_pid "${pid%/cmdline}"
    done
    if ((rc == 0 || rc == 77)); then
      rm -rf "$W"
    else
      e2e_log "work directory kept: $W"
    fi
  fi
  exit "$rc"
}

# For the real-program cases: the program NAME, started with e2e_vos_run, reports its iteration
# in $W/work/progress and writes $W/work/out when done. Checkpoints it mid-way with --kill,
# restores it and requires $W/work/out to equal $W/ref/out from an uninterrupted run.
e2e_real_checkpoint_restore_compare() {
  local label=$1 name=$2
  e2e_wait_file "$W/work/progress" 20 "$label start" "$name"
  sleep 0.5
  e2e_checkpoint "$name" "$W/img" --kill
  [[ ! -e $W/work/out ]] || e2e_die "$label finished before the checkpoint; raise ITERATIONS"
  e2e_log "checkpointed $label at iteration $(cat "$W/work/progress")"
  e2e_restore_wait "$IMG" "$W/restore.log"
  ((WAIT_RC == 0)) || e2e_die "vos restore exited with status $WAIT_RC"
  [[ -f $W/work/out ]] || e2e_die "restored $label wrote no output"
  cmp -s "$W/ref/out" "$W/work/out" ||
    e2e_die "result differs: restored '$(cat "$W/work/out")', uninterrupted '$(cat "$W/ref/out")'"
  e2e_log "PASS: $label"
}
