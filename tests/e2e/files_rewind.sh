#!/usr/bin/env bash
# e2e (test harness): the fault-tolerance use of vos. A job is checkpointed live (no --kill) while
# it writes its output, runs on, writing more, and dies; the last image is restored and the job
# finishes. With `vos restore --files=rewind` its output must be byte for byte that of an
# uninterrupted run:
#   - a writer of a numbered sequence (out.txt, written at its offset, and log.txt, O_APPEND):
#     both files only grew after the checkpoint and are cut back to their size then;
#   - a job that keeps its counter in a file it overwrites in place (state.txt) and appends to
#     out.txt: its state file was overwritten since, so rewinding needs its content, which
#     `vos checkpoint --with-files` stores; without it --files=rewind refuses.
# `--files=check` (the default) refuses, naming the file and both other options; `--files=keep`
# takes the files as they are: the sequence writer goes on at its offset in out.txt, rewriting
# the lines it wrote after the checkpoint with the same text.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_setup

PYTHON=${E2E_PYTHON:-}
[[ -n $PYTHON ]] || e2e_die "python3 not found"
LINES=1500

# writer.py MODE DIR N: MODE "sequence" writes line i of out.txt at its offset and to log.txt
# (O_APPEND); MODE "state" reads its counter from state.txt, appends that line to out.txt and
# writes counter + 1 back over state.txt. Each step ~2 ms; progress says how far it got. At step
# 2N/3 it waits for DIR/finish, so that it is surely still running when the harness kills it.
cat >"$W/writer.py" <<'EOF'
import os, sys, time

mode, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def line(i):
    return b"%06d %s\n" % (i, b"x" * (i % 37))

def progress(i):
    with open(os.path.join(d, "progress.tmp"), "w") as f:
        f.write("%d\n" % i)
    os.replace(os.path.join(d, "progress.tmp"), os.path.join(d, "progress"))

def gate(i):
    if i == 2 * n // 3:
        progress(i)
        while not os.path.exists(os.path.join(d, "finish")):
            time.sleep(0.01)

out = os.open(os.path.join(d, "out.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
if mode == "sequence":
    log = os.open(os.path.join(d, "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    for i in range(n):
        gate(i)
        os.write(out, line(i))
        os.write(log, b"step %d done\n" % i)
        if i % 20 == 0:
            progress(i)
        time.sleep(0.002)
else:
    state = os.open(os.path.join(d, "state.txt"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(state, b"%012d\n" % 0, 0)
    while True:
        i = int(os.pread(state, 13, 0))
        if i >= n:
            break
        gate(i)
        os.write(out, line(i))
        os.pwrite(state, b"%012d\n" % (i + 1), 0)
        if i % 20 == 0:
            progress(i)
        time.sleep(0.002)
open(os.path.join(d, "done"), "w").close()
EOF

# reference MODE: an uninterrupted run's files in $W/ref-MODE.
reference() {
  mkdir "$W/ref-$1"
  touch "$W/ref-$1/finish"
  "$PYTHON" "$W/writer.py" "$1" "$W/ref-$1" "$LINES" || e2e_die "uninterrupted $1 run failed"
}

progress() { cat "$1/progress" 2>/dev/null || echo 0; }

# wait_progress DIR N NAME: until the writer in DIR is past step N.
wait_progress() {
  local i
  for ((i = 0; i < 600; i++)); do
    (($(progress "$1") >= $2)) && return 0
    e2e_gone "$3" && e2e_die "the writer ($3) ended before step $2"
    sleep 0.05
  done
  e2e_die "the writer ($3) did not reach step $2"
}

# crash_after_live_checkpoint MODE DIR [CHECKPOINT ARGS]: starts the writer under vos, takes a
# live checkpoint a third of the way (IMG), lets it write on to two thirds and kills it there;
# then lets the restored one go past that point.
crash_after_live_checkpoint() {
  local mode=$1 dir=$2 pid
  shift 2
  NAME=e2e-rewind-$mode-$$-$RANDOM
  mkdir "$dir"
  e2e_vos_run "$NAME" "$W/run-$mode.log" "$PYTHON" "$W/writer.py" "$mode" "$dir" "$LINES"
  wait_progress "$dir" $((LINES / 3)) "$NAME"
  e2e_checkpoint "$NAME" "$W/img-$mode" "$@"
  local at
  at=$(progress "$dir")
  ((at < 2 * LINES / 3)) || e2e_die "the checkpoint took so long that the writer reached its end"
  wait_progress "$dir" $((2 * LINES / 3)) "$NAME"
  pid=$(e2e_ps_pids "$NAME")
  [[ -n $pid ]] || e2e_die "$NAME is not listed by vos ps"
  kill -KILL "$pid"
  e2e_wait_gone "$NAME" 10 "the killed writer"
  [[ ! -e $dir/done ]] || e2e_die "the writer finished before it was killed"
  touch "$dir/finish"
  e2e_log "$mode: checkpointed at step ~$at, killed at step $(progress "$dir")"
}

# expect_refused NEEDLE... -- [RESTORE ARGS]: `vos restore IMG RESTORE ARGS` must fail, say every
# NEEDLE and leave nothing running.
expect_refused() {
  local rc=0 needle
  local -a needles=()
  while [[ $1 != -- ]]; do
    needles+=("$1")
    shift
  done
  shift
  "$VOS" restore "$IMG" "$@" </dev/null >"$W/refused.log" 2>&1 || rc=$?
  ((rc != 0)) || e2e_die "vos restore $* succeeded; expected a refusal"
  for needle in "${needles[@]}"; do
    grep -qF -- "$needle" "$W/refused.log" ||
      e2e_die "vos restore $* refused without saying '$needle': $(cat "$W/refused.log")"
  done
  e2e_gone "$NAME" || e2e_die "vos restore $* refused, yet $NAME runs"
  e2e_log "refused as it should: $(head -c 300 "$W/refused.log")"
}

restore_and_finish() {
  e2e_restore_wait "$IMG" "$W/restore.log" "$@"
  ((WAIT_RC == 0)) || e2e_die "vos restore $* exited with status $WAIT_RC"
}

expect_same() {  # FILE REF WHAT
  cmp -s "$1" "$2" || e2e_die "$3: $(basename "$1") differs from the uninterrupted run's" \
    "($(wc -c <"$1") bytes, want $(wc -c <"$2"); first difference: $(cmp "$1" "$2" 2>&1 | head -1))"
}

reference sequence
reference state

# A writer of a sequence: check refuses, rewind restores it to an identical output.
crash_after_live_checkpoint sequence "$W/seq"
size_then=$("$VOS" inspect --json "$IMG" | "$PYTHON" -c 'import json, sys
for f in json.load(sys.stdin)["process"]["fds"]:
    if f["path"].endswith("/out.txt"):
        assert f["content_hash"], f
        print(f["size"])')
[[ -n $size_then ]] || e2e_die "the image records no hash of out.txt"
expect_refused "$W/seq/out.txt" "changed size since the checkpoint" "--files=rewind" "--files=keep" --
cp "$W/seq/out.txt" "$W/seq-out-at-crash.txt"
restore_and_finish --files=rewind
[[ -e $W/seq/done ]] || e2e_die "the restored writer did not finish"
expect_same "$W/seq/out.txt" "$W/ref-sequence/out.txt" "sequence after --files=rewind"
expect_same "$W/seq/log.txt" "$W/ref-sequence/log.txt" "sequence after --files=rewind"
e2e_log "sequence: rewound out.txt from $(wc -c <"$W/seq-out-at-crash.txt") to $size_then bytes; output identical"

# The same image again, with the files as the finished run left them: keep goes on at the
# recorded offset of out.txt (same lines again: identical), and appends to log.txt after its end.
rm "$W/seq/done"
restore_and_finish --files=keep
[[ -e $W/seq/done ]] || e2e_die "the writer restored with --files=keep did not finish"
expect_same "$W/seq/out.txt" "$W/ref-sequence/out.txt" "sequence after --files=keep"
(($(wc -c <"$W/seq/log.txt") > $(wc -c <"$W/ref-sequence/log.txt"))) ||
  e2e_die "--files=keep: log.txt (O_APPEND) was not taken as it was (it did not grow past its end)"

# A job whose state file it overwrites: without --with-files rewind refuses, with it the output is
# identical.
crash_after_live_checkpoint state "$W/state"
expect_refused "state.txt" "changed since the checkpoint" "--with-files" "--files=keep" -- --files=rewind
rm -rf "$W/state"
crash_after_live_checkpoint state "$W/state" --with-files
restore_and_finish --files=rewind
[[ -e $W/state/done ]] || e2e_die "the restored state job did not finish"
expect_same "$W/state/out.txt" "$W/ref-state/out.txt" "state job after --with-files and --files=rewind"
expect_same "$W/state/state.txt" "$W/ref-state/state.txt" "state job after --with-files and --files=rewind"
e2e_log "PASS"
