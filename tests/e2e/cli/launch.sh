#!/usr/bin/env bash
# e2e (test harness): what `vos run` promises about starting and ending a program, kept while its
# start-up is made faster: the program's pid (inside its namespace, under init, pid 1) is a number
# no other live process on the host has (its keeper's host pid, to which a signal sent from the
# host is passed on), with a /proc and an IPC namespace of its own, only stdin/stdout/stderr,
# libvos.so preloaded and default SIGPIPE; a script without #! still runs (via /bin/sh); a
# foreground `vos run` returns with the first process's status, and what that process left
# running (a daemon) stays under vos until it ends too; then the name is free.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
cd "$W"

uniq=$$-$RANDOM

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
sleep 0.1
pgrep -f "$marker" >/dev/null || e2e_die "pgrep cannot see a process started as $marker"
kill "$probe"
wait "$probe" 2>/dev/null || true
rc=0
E2E_NAMES+=("left-$uniq")
"$VOS" run --name "left-$uniq" -- sh -c '"$0-$1" 100 & exit 4' "$W/vos-leftover" "$uniq" \
  </dev/null >>"$W/run.log" 2>&1 || rc=$?
((rc == 4)) || e2e_die "exit status 4 came back as $rc"
left=$(pgrep -f "$marker") || e2e_die "the program's background child was killed when its parent ended"
[[ -n $(e2e_ps_pids "left-$uniq") ]] || e2e_die "vos ps no longer lists left-$uniq while its child runs"
expect_refusal=$("$VOS" checkpoint "left-$uniq" --dir "$W" 2>&1) && e2e_die "checkpoint of a program whose first process ended succeeded"
[[ $expect_refusal == *"first process has ended"* ]] || e2e_die "unclear refusal: $expect_refusal"
kill "$left"
e2e_wait_gone "left-$uniq" 10 "the program once its last process ended"
"$VOS" run --name "left-$uniq" -- true </dev/null >>"$W/run.log" 2>&1 ||
  e2e_die "the name was not free once the program's last process ended"
e2e_log "ok: first process's status returned, its child ran on under vos, then the name was free"

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
