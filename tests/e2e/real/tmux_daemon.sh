#!/usr/bin/env bash
# e2e (real program): a program that daemonizes (tmux new -d: the client forks the server, which
# detaches with setsid, and exits) stays under vos: vos run returns with the client's status, the
# server runs on and answers, vos ps lists the program until the server ends, and a checkpoint
# of it says clearly why it cannot be done yet (the pseudo-terminals the server holds: the tree
# itself is checkpointed) instead of killing it.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
command -v tmux >/dev/null || { e2e_log "SKIP: tmux is not installed"; exit 77; }
name="tmux-$$-$RANDOM"
sock="$W/tmux.sock"
E2E_NAMES+=("$name")
rc=0
"$VOS" run --name "$name" -- tmux -S "$sock" new-session -d -s job 'sleep 300' </dev/null \
  >"$W/run.log" 2>&1 || rc=$?
((rc == 0)) || e2e_die "vos run of tmux new -d exited $rc: $(cat "$W/run.log")"
tmux -S "$sock" has-session -t job 2>>"$W/run.log" || e2e_die "the tmux server did not survive its client"
[[ -n $(e2e_ps_pids "$name") ]] || e2e_die "vos ps does not list $name while its tmux server runs"
out=$("$VOS" checkpoint "$name" --dir "$W/img" 2>&1) && e2e_die "checkpoint of the daemon succeeded: $out"
[[ $out == *"/dev/ptmx is not supported yet"* ]] || e2e_die "unclear refusal: $out"
tmux -S "$sock" has-session -t job || e2e_die "the refused checkpoint ended the tmux server"
tmux -S "$sock" kill-server
e2e_wait_gone "$name" 10 "the program once its tmux server ended"
e2e_log "PASS: tmux new -d stays under vos until its server ends"
