#!/usr/bin/env bash
# e2e (test harness): what `vos run` promises about starting and ending a program, kept while its
# start-up is made faster: the program's pid (inside its namespace, under init, pid 1) is a number
# no other live process on the host has (its keeper's host pid, to which a signal sent from the
# host is passed on), with a /proc and an IPC namespace of its own, only stdin/stdout/stderr,
# libvos.so preloaded and default SIGPIPE; a script without #! still runs (via /bin/sh); a
# foreground `vos run` returns with the first process's status, and what that process left
# running (a daemon) stays under vos until it ends too; then the name is free.
set -euo pipefail
[[ -n ${E2E_TRACE:-} ]] && set -x
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
cd "$W"

uniq=$$-$RANDOM

# The pid of the process started as $1, waiting up to 10 s: a background child may still be
# between fork and exec when its parent returns (and more so on a loaded machine).
pgrep_started() {
  local i
  for ((i = 0; i < 100; i++)); do
    pgrep -f "$1" && return 0
    sleep 0.1
  done
  return 1
}

# Identity, fds, preload and signal state, as the program sees them.
"$VOS" run -- sh -c 'echo "pid=$$ ppid=$PPID"; ls /proc/self/fd | tr "\n" " "; echo;
  echo "preload=$LD_PRELOAD"; grep SigIgn /proc/self/status; echo "ipc=$(readlink /proc/self/ns/ipc)"' \
  </dev/null >"$W/inside.log" 3>"$W/extra-fd.log" 2>>"$W/run.log" ||
  e2e_die "vos run of the probe failed"
grep -q '^pid=[0-9]* ppid=1$' "$W/inside.log" || e2e_die "program is not under pid 1: $(head -1 "$W/inside.log")"
# ls opens one fd for the directory it lists.
grep -qx '0 1 2 3 ' "$W/inside.log" || e2e_die "program did not get exactly fds 0-2"
grep -q '^preload=.*libvos\.so' "$W/inside.log" || e2e_die "libvos.so is not preloaded"
grep -q '^SigIgn:[[:space:]]*0*$' "$W/inside.log" || e2e_die "program starts with ignored signals"
# Its System V IPC objects are its own, under ids no other program takes (restore needs that).
grep -q '^ipc=ipc:\[[0-9]*\]$' "$W/inside.log" || e2e_die "no IPC namespace in: $(cat "$W/inside.log")"
! grep -qxF "ipc=$(readlink /proc/self/ns/ipc)" "$W/inside.log" ||
  e2e_die "program shares the caller's IPC namespace"
e2e_log "ok: $(tr '\n' ' ' <"$W/inside.log")"

# A script without #! runs with /bin/sh, as with execvp.
printf 'echo script-ran\n' >"$W/noshebang"
chmod +x "$W/noshebang"
out=$("$VOS" run -- "$W/noshebang" </dev/null 2>>"$W/run.log") || e2e_die "script without #! failed"
[[ $out == script-ran ]] || e2e_die "script without #! printed '$out'"

# Two programs under vos at once never see the same pid; each one's pid is its keeper's host pid
# (no other live process has it), and a signal sent to that pid from the host reaches the program.
for i in 1 2; do
  E2E_NAMES+=("ids$i-$uniq")
  "$VOS" run -d --name "ids$i-$uniq" -- python3 -c 'import os, signal, sys, time
d, i = sys.argv[1], sys.argv[2]
def term(*_):
    open(f"{d}/term{i}", "w").close()
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
with open(f"{d}/pid{i}.tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(f"{d}/pid{i}.tmp", f"{d}/pid{i}")
while True:
    time.sleep(0.05)' "$W" "$i" </dev/null >"$W/ids$i.log" 2>&1 || e2e_die "vos run -d of ids$i failed"
done
e2e_wait_file "$W/pid1" 10 "first program's pid"
e2e_wait_file "$W/pid2" 10 "second program's pid"
p1=$(<"$W/pid1") p2=$(<"$W/pid2")
((p1 != p2)) || e2e_die "two programs under vos both see pid $p1"
ps_json=$("$VOS" ps --json)
for i in 1 2; do
  inner=$(<"$W/pid$i")
  keeper=$("$E2E_PYTHON" -c 'import json,sys; print([e["keeper_pid"] for e in json.load(sys.stdin) if e["name"]==sys.argv[1]][0])' "ids$i-$uniq" <<<"$ps_json")
  ((inner == keeper)) || e2e_die "program $i sees pid $inner; its keeper's host pid is $keeper"
done
kill -TERM "$p1"
e2e_wait_file "$W/term1" 10 "SIGTERM sent from the host to pid $p1"
e2e_wait_gone "ids1-$uniq" 10 "program 1 after SIGTERM"
"$VOS" checkpoint "ids2-$uniq" --dir "$W" --kill >>"$W/run.log" 2>&1 || e2e_die "checkpoint of ids2 failed"
img2=$(ls "$W"/ids2-"$uniq"-*.vos)
rm "$W/pid2"
E2E_NAMES+=("ids2b-$uniq")
"$VOS" restore -d --name "ids2b-$uniq" "$img2" </dev/null >>"$W/run.log" 2>&1 || e2e_die "restore of ids2 failed"
kill -0 "$("$VOS" ps --json | "$E2E_PYTHON" -c 'import json,sys; print([e["pid"] for e in json.load(sys.stdin) if e["name"]==sys.argv[1]][0])' "ids2b-$uniq")" ||
  e2e_die "restored ids2 not running"
"$VOS" checkpoint "ids2b-$uniq" --dir "$W/again" --kill >>"$W/run.log" 2>&1 || true
e2e_log "ok: pids $p1 and $p2 differ, are their keepers' host pids, a host SIGTERM arrived"

# Leftovers: a background child outlives the program's first process. vos run returns with the
# first process's status, as a shell would, and the child runs on under vos (the name stays in
# vos ps) until it ends too; then the name is free. The child runs sleep through a symlink with a
# unique name for pgrep -f; the name is put together inside the program, so vos's own command line
# never matches.
marker="$W/vos-leftover-$uniq"
ln -s "$(command -v sleep)" "$marker"
"$marker" 100 &
probe=$!
pgrep_started "$marker" >/dev/null || e2e_die "pgrep cannot see a process started as $marker"
kill "$probe"
wait "$probe" 2>/dev/null || true
rc=0
E2E_NAMES+=("left-$uniq")
"$VOS" run --name "left-$uniq" -- sh -c '"$0-$1" 100 & exit 4' "$W/vos-leftover" "$uniq" \
  </dev/null >>"$W/run.log" 2>&1 || rc=$?
((rc == 4)) || e2e_die "exit status 4 came back as $rc"
left=$(pgrep_started "$marker") || e2e_die "the program's background child was killed when its parent ended"
[[ -n $(e2e_ps_pids "left-$uniq") ]] || e2e_die "vos ps no longer lists left-$uniq while its child runs"
# vos ps shows what is left of the program: that child alone, by host pid and command, its
# parent vos's init (pid 1 inside) now that the first process is gone.
procs=$("$VOS" ps --json | "$E2E_PYTHON" -c 'import json, sys
e = next(p for p in json.load(sys.stdin) if p["name"] == sys.argv[1])
print(" ".join("%d:%d:%s" % (p["host_pid"], p["ppid"], p["command"]) for p in e["processes"]))' \
  "left-$uniq")
[[ $procs == "$left:1:$marker 100" ]] || e2e_die "vos ps --json processes: '$procs', want '$left:1:$marker 100'"
[[ $("$VOS" ps) == *"$left"*"$marker 100"* ]] || e2e_die "vos ps does not show the child $left: $("$VOS" ps)"
# What is left is still the program: checkpointed (the leftover alone, an orphan of init) and
# restored, it runs on under the same name with its pid and parent inside.
img=$("$VOS" checkpoint "left-$uniq" --dir "$W" --kill 2>>"$W/run.log") ||
  e2e_die "checkpoint of a program whose first process ended failed: $(tail -1 "$W/run.log")"
e2e_wait_gone "left-$uniq" 10 "checkpoint --kill of the leftover"
"$VOS" restore --detach "$img" </dev/null >>"$W/run.log" 2>&1 || e2e_die "restore of the leftover failed"
left=$(pgrep_started "$marker") || e2e_die "the restored leftover does not run"
procs=$("$VOS" ps --json | "$E2E_PYTHON" -c 'import json, sys
e = next(p for p in json.load(sys.stdin) if p["name"] == sys.argv[1])
print(" ".join("%d:%d:%s" % (p["host_pid"], p["ppid"], p["command"]) for p in e["processes"]))' \
  "left-$uniq")
[[ $procs == "$left:1:$marker 100" ]] || e2e_die "restored: vos ps --json processes: '$procs', want '$left:1:$marker 100'"
kill "$left"
e2e_wait_gone "left-$uniq" 10 "the program once its last process ended"
"$VOS" run --name "left-$uniq" -- true </dev/null >>"$W/run.log" 2>&1 ||
  e2e_die "the name was not free once the program's last process ended"
e2e_log "ok: first process's status returned, its child ran on under vos, then the name was free"

# A foreground vos run whose program is checkpointed with --kill does not look like a finished
# job: it exits with 75 (documented in vos run --help) and says where the image is.
E2E_NAMES+=("fg-$uniq")
("$VOS" run --name "fg-$uniq" -- "$E2E_PYTHON" -c 'import sys, time
open(sys.argv[1], "w").close()
time.sleep(100)' "$W/fg.ready" </dev/null 2>&1 | cat >"$W/fg.log") &
fg=$!
e2e_wait_file "$W/fg.ready" 10 "foreground program start"
fg_img=$("$VOS" checkpoint "fg-$uniq" --dir "$W/fgimg" --kill 2>>"$W/run.log") ||
  e2e_die "checkpoint --kill of the foreground program failed"
rc=0
wait "$fg" || rc=$?
((rc == 75)) || e2e_die "foreground vos run exited $rc after checkpoint --kill; want 75"
grep -qF "checkpointed to $fg_img" "$W/fg.log" || e2e_die "vos run did not name the image: $(cat "$W/fg.log")"
e2e_log "ok: checkpointed foreground run exits 75: $(cat "$W/fg.log")"

# `out=$(vos run --detach --json -- prog)` returns at once; the program's terminal or pipe
# output goes to its log (vos logs NAME), and a pipe on stdin stays the program's.
E2E_NAMES+=("lg-$uniq")
out=$(echo 21 | timeout 10 "$VOS" run -d --json --name "lg-$uniq" -- python3 -c 'import sys, time
print(int(input()) * 2, flush=True)
print("to stderr", file=sys.stderr, flush=True)
time.sleep(1)' 2>&1) || e2e_die "vos run -d --json in \$(...) did not return: $out"
[[ $out == *'"log":'* ]] || e2e_die "vos run -d --json printed '$out'"
e2e_wait_gone "lg-$uniq" 10 "the logged program"
logged=$("$VOS" logs "lg-$uniq")
[[ $logged == *42* && $logged == *"to stderr"* ]] || e2e_die "vos logs shows '$logged'"
e2e_log "ok: vos run -d --json returned at once; stdin read from the pipe; vos logs: $(tr '\n' ' ' <<<"$logged")"

# The log stands for the detached program's terminal: after a checkpoint the program goes on
# writing to it, and a restore (which the grown log must not refuse) appends to it, continuing.
E2E_NAMES+=("count-$uniq")
"$VOS" run -d --name "count-$uniq" -- "$E2E_PYTHON" -c 'import itertools, time
for i in itertools.count():
    print(i, flush=True)
    time.sleep(0.02)' 2>&1 | cat >/dev/null
sleep 0.5
"$VOS" checkpoint "count-$uniq" --dir "$W/count" >/dev/null 2>>"$W/run.log" || e2e_die "live checkpoint of count failed"
sleep 0.3
"$VOS" checkpoint "count-$uniq" --dir "$W/count2" --kill >/dev/null 2>>"$W/run.log" || e2e_die "checkpoint --kill of count failed"
last=$("$VOS" logs "count-$uniq" | tail -1)
"$VOS" restore -d "$W"/count/*.vos 2>&1 | cat >>"$W/run.log" || e2e_die "restore of count failed: $(tail -1 "$W/run.log")"
sleep 0.5
"$VOS" checkpoint "count-$uniq" --dir "$W/count3" --kill >/dev/null 2>>"$W/run.log" || e2e_die "the restored count is not running"
"$VOS" logs "count-$uniq" >"$W/count.log"
"$E2E_PYTHON" - "$last" "$W/count.log" <<'PY' || e2e_die "the log does not go on after the restore"
import sys
nums = [int(x) for x in open(sys.argv[2]).read().split()]
last = int(sys.argv[1])
cut = nums.index(last)
before, after = nums[:cut + 1], nums[cut + 1:]
assert before == list(range(last + 1)), "log before the restore has gaps"
assert after and after[0] <= last and after == list(range(after[0], after[0] + len(after))), after[:5]
PY
e2e_log "ok: a detached program's log: the restored copy appends to it, continuing its count"

# Scripts read `vos run -d` and `vos restore -d --json` through pipes: once the program no longer
# holds the caller's stdout, the pipe must end when vos returns (the keeper held it before).
quiet="quiet-$uniq"
# (timeout kills its own process group: the pipe lives inside it and the output goes to a file,
# so a keeper holding the pipe cannot keep this script waiting.)
VOS=$VOS VOS_QUIET=$quiet timeout 20 bash -c '"$VOS" run -d --name "$VOS_QUIET" -- \
  sh -c "exec >/dev/null 2>&1; exec sleep 100" | cat' </dev/null >"$W/quiet-run.out" 2>>"$W/run.log" ||
  e2e_die "vos run -d read through a pipe did not end"
E2E_NAMES+=("$quiet")
img_json=$("$VOS" checkpoint "$quiet" --dir "$W" --kill --json 2>>"$W/run.log") ||
  e2e_die "checkpoint of $quiet failed"
img=$(sed -n 's/.*"image":"\([^"]*\)".*/\1/p' <<<"$img_json")
[[ -f $img ]] || e2e_die "no image named in: $img_json"
VOS=$VOS VOS_IMG=$img timeout 20 bash -c '"$VOS" restore "$VOS_IMG" -d --json | cat' \
  </dev/null >"$W/quiet-restore.out" 2>>"$W/run.log" ||
  e2e_die "vos restore -d --json read through a pipe did not end"
out=$(<"$W/quiet-restore.out")
[[ $out == *'"pid":'* ]] || e2e_die "restore -d --json printed '$out'"
e2e_log "ok: -d through a pipe returns: $out"
echo PASS
