#!/usr/bin/env bash
# e2e (test harness): vos checkpoint shows how far it got. --progress=always reports on stderr
# (a line every 0.2 s, then "done" with what the image holds) while --json's reply still reaches
# stdout whole; "never", and "auto" when stderr is not a terminal, print nothing; on a terminal
# (through script(1)) the line is rewritten in place and cleared at the end. Ctrl-C calls a
# checkpoint off. The image of the 512 MiB program restores, and the program finds its data
# intact.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup

NAME=e2e-progress-$$-$RANDOM
e2e_run_data_holder "$NAME" 512

# --progress=always with --json: progress lines on stderr, the JSON reply whole on stdout.
"$VOS" checkpoint "$NAME" --dir "$W/img1" --progress=always --json >"$W/ck1.json" 2>"$W/ck1.err" ||
  e2e_die "checkpoint --progress=always failed: $(cat "$W/ck1.err")"
J=$(cat "$W/ck1.json")
total_ms=$(e2e_field total_ms)
logical=$(e2e_field pages_logical_bytes)
python3 - "$W/ck1.err" "$NAME" "$total_ms" "$logical" <<'PY' || e2e_die "progress lines: $(cat "$W/ck1.err")"
import re, sys
path, name, total_ms, logical = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
lines = open(path).read().splitlines()
label = f"vos checkpoint: {name}: "
assert lines and all(l.startswith(label) for l in lines), "a line that is not progress"
steps = [l for l in lines if " written of ~" in l]
done = [l for l in lines if l.startswith(label + "done, ")]
assert len(done) == 1 and lines[-1] == done[0], "no single last 'done' line"
# 512 MiB in whole MiB (logical bytes hold the program's other memory too).
assert re.search(r"done, (5\d\d MiB|0\.5 GiB) written in ", done[0]), done[0]
assert logical >= 512 << 20, f"image holds {logical} bytes of pages"
def mib(text):
    n, unit = re.match(r".*: ([\d.]+) (KiB|MiB|GiB) written", text).groups()
    return float(n) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]
seen = [mib(l) for l in steps]
assert seen == sorted(seen), f"progress went backwards: {seen}"
assert all(re.search(r"\((\d\d?)%\)", l) for l in steps), "a step without its percentage"
# A report goes out every 0.2 s: a checkpoint this long must have shown some.
if total_ms >= 500:
    assert len(steps) >= 1, f"no progress line in {total_ms} ms"
print(f"{len(steps)} progress lines in {total_ms:.0f} ms, then: {done[0]}")
PY
e2e_log "always: $(tail -1 "$W/ck1.err")"
[[ $(e2e_field image) == "$W"/img1/*.vos ]] || e2e_die "--json reply damaged: $J"

# Ctrl-C calls the checkpoint off once it is under way: no image and no temporary file are left,
# the program runs on with its data, and the next checkpoint works.
# (A script's background jobs ignore SIGINT; on a terminal Ctrl-C's SIGINT has its default.)
env --default-signal=INT "$VOS" checkpoint "$NAME" --dir "$W/img-cancel" --progress=always \
  >"$W/cancel.out" 2>"$W/cancel.err" &
cli=$!
E2E_BG_PIDS+=("$cli")
for ((i = 0; i < 100; i++)); do
  grep -q "written of" "$W/cancel.err" 2>/dev/null && break
  kill -0 "$cli" 2>/dev/null || break
  sleep 0.01
done
grep -q "written of" "$W/cancel.err" || e2e_die "no progress line to interrupt: $(cat "$W/cancel.err")"
grep -q "done, " "$W/cancel.err" && e2e_die "the checkpoint ended before it could be interrupted"
kill -INT "$cli"
e2e_wait_pid "$cli" 10 "interrupted vos checkpoint"
# The keeper notices within 0.2 s; the next checkpoint waits for it to be done with this one.
"$VOS" checkpoint "$NAME" --dir "$W/img-after" >"$W/after.out" 2>"$W/after.err" ||
  e2e_die "checkpoint after the interrupted one failed: $(cat "$W/after.err")"
left=$(find "$W/img-cancel" -mindepth 1 2>/dev/null | head -3)
[[ -z $left ]] || e2e_die "the interrupted checkpoint left files: $left"
e2e_data_check "after the interrupted checkpoint"
e2e_log "interrupted after: $(grep -o '[^:]*written of[^,]*' "$W/cancel.err" | tail -1); nothing left"

# never, and auto into a file: nothing on stderr but what the checkpoint has to say.
for mode in never auto; do
  "$VOS" checkpoint "$NAME" --dir "$W/img-$mode" --progress=$mode >"$W/ck-$mode.out" 2>"$W/ck-$mode.err" ||
    e2e_die "checkpoint --progress=$mode failed: $(cat "$W/ck-$mode.err")"
  [[ ! -s $W/ck-$mode.err ]] || e2e_die "--progress=$mode wrote: $(cat "$W/ck-$mode.err")"
done

# On a terminal: auto rewrites one line and clears it at the end; stdout keeps the image path.
script -qec "$VOS checkpoint $NAME --dir $W/img-tty --kill" /dev/null >"$W/tty.log" </dev/null ||
  e2e_die "checkpoint on a terminal failed: $(cat -v "$W/tty.log")"
if grep -q "written of" "$W/tty.log"; then
  python3 - "$W/tty.log" <<'PY' || e2e_die "terminal output: $(cat -v "$W/tty.log")"
import sys
out = open(sys.argv[1], "rb").read().decode()
last = out.rstrip("\r\n").splitlines()[-1]
assert "\r\x1b[K" in out and "\n" not in out.split("\r\x1b[K")[1], "progress not on one line"
assert last.endswith(".vos"), f"last line is not the image path: {last!r}"
assert out.count("\r\x1b[K") >= 2 and out.split("\r\x1b[K")[-1].strip().endswith(".vos"), \
    "the progress line was not cleared before the image path"
PY
  e2e_log "terminal: $(grep -o 'written of[^,]*' "$W/tty.log" | tail -1), cleared"
else
  e2e_log "terminal: the checkpoint took under 0.5 s, so auto showed nothing"
fi
IMG=$(tr -d '\r' <"$W/tty.log" | grep '\.vos$' | tail -1 | sed 's/.*\x1b\[K//')
[[ -f $IMG ]] || e2e_die "no image from the terminal checkpoint: $(cat -v "$W/tty.log")"
e2e_wait_gone "$NAME" 5 "checkpoint --kill"
e2e_restore_and_check "$IMG" "after the restore"
e2e_log "PASS"
