#!/usr/bin/env bash
# e2e (test harness): what `vos run` promises about starting and ending a program, kept while its
# start-up is made faster: the program gets pid 2 under the keeper (pid 1) with a /proc of its
# own, only stdin/stdout/stderr, libvos.so preloaded and default SIGPIPE; a script without #!
# still runs (via /bin/sh); and once a foreground `vos run` returns, nothing the program left
# behind is still running and its name is free.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
cd "$W"

uniq=$$-$RANDOM

# Identity, fds, preload and signal state, as the program sees them.
"$VOS" run -- sh -c 'echo "pid=$$ ppid=$PPID"; ls /proc/self/fd | tr "\n" " "; echo;
  echo "preload=$LD_PRELOAD"; grep SigIgn /proc/self/status' \
  </dev/null >"$W/inside.log" 3>"$W/extra-fd.log" 2>>"$W/run.log" ||
  e2e_die "vos run of the probe failed"
grep -q '^pid=2 ppid=1$' "$W/inside.log" || e2e_die "program is not pid 2 under pid 1"
# ls itself is pid 3 here and opens one fd for the directory it lists.
grep -qx '0 1 2 3 ' "$W/inside.log" || e2e_die "program did not get exactly fds 0-2"
grep -q '^preload=.*libvos\.so' "$W/inside.log" || e2e_die "libvos.so is not preloaded"
grep -q '^SigIgn:[[:space:]]*0*$' "$W/inside.log" || e2e_die "program starts with ignored signals"
e2e_log "ok: $(tr '\n' ' ' <"$W/inside.log")"

# A script without #! runs with /bin/sh, as with execvp.
printf 'echo script-ran\n' >"$W/noshebang"
chmod +x "$W/noshebang"
out=$("$VOS" run -- "$W/noshebang" </dev/null 2>>"$W/run.log") || e2e_die "script without #! failed"
[[ $out == script-ran ]] || e2e_die "script without #! printed '$out'"

# Leftovers: a background child outlives the program's main process; it must be killed with the
# namespace, and the name must be free for a new run at once. (The keeper kills and reaps it
# before it reports the program's end, so it is gone before vos run returns; a check from here
# starts too late to tell that from "killed a few milliseconds later", so this checks only that
# it is gone.) The child runs sleep through a symlink with a unique name for pgrep -f; the name
# is put together inside the program, so vos's own command line never matches.
marker="$W/vos-leftover-$uniq"
ln -s "$(command -v sleep)" "$marker"
"$marker" 100 &
probe=$!
sleep 0.1
pgrep -f "$marker" >/dev/null || e2e_die "pgrep cannot see a process started as $marker"
kill "$probe"
wait "$probe" 2>/dev/null || true
rc=0
"$VOS" run --name "left-$uniq" -- sh -c '"$0-$1" 100 & exit 4' "$W/vos-leftover" "$uniq" \
  </dev/null >>"$W/run.log" 2>&1 || rc=$?
((rc == 4)) || e2e_die "exit status 4 came back as $rc"
if pgrep -f "$marker" >/dev/null; then
  e2e_die "the program's background child still runs after vos run returned"
fi
"$VOS" run --name "left-$uniq" -- true </dev/null >>"$W/run.log" 2>&1 ||
  e2e_die "the name was not free right after vos run returned"
e2e_log "ok: leftovers gone, name free"

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
