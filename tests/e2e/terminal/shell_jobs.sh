#!/usr/bin/env bash
# e2e (real program, terminal): an interactive bash started with vos run --detach from a
# terminal keeps its own pty. Attached from a window of the test's tmux, it gets a stopped job
# (Ctrl-Z), a background job and a half-typed line for `cat`; a second vos attach --shared sees
# the same screen. After vos checkpoint --kill and vos restore in another window, the stopped job
# is still stopped in its own process group, `fg` and typing go on, the half-typed line ends up
# in cat's file whole, and vos restore exits with bash's status.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
command -v tmux >/dev/null || { e2e_log "SKIP: tmux is not installed"; exit 77; }
name="bash-$$-$RANDOM"
E2E_NAMES+=("$name")
mkdir -p "$W/img" "$W/work"
# shellcheck source=tmux_terminal.sh
source "$(dirname "$0")/tmux_terminal.sh"
tm new-session -d -s u -x 100 -y 30 \
  "'$VOS' run -d --name '$name' -- bash --norc --noprofile -i; echo run-exit=\$? >'$W/run.rc'; sleep 600"
[[ $(wait_rc "$W/run.rc") == 0 ]] || e2e_die "vos run -d failed: $(pane 0)"
wait_pane 0 "vos attach $name"

tm new-window -t u:1 "'$VOS' attach '$name'; echo attach-exit=\$? >'$W/attach1.rc'; sleep 600"
tm send-keys -t u:1 'PS1="prompt> "' Enter
wait_pane 1 "prompt>"
tm send-keys -t u:1 'sleep 300' Enter
sleep 0.3
tm send-keys -t u:1 C-z
wait_pane 1 "Stopped"
tm send-keys -t u:1 'sleep 400 &' Enter "cat > '$W/work/typed.txt'" Enter
sleep 0.3
tm send-keys -t u:1 abc
wait_pane 1 "abc"
tm new-window -t u:2 "'$VOS' attach --shared '$name'; echo attach-exit=\$? >'$W/attach2.rc'; sleep 600"
wait_pane 2 "Stopped"
wait_pane 2 "abc"
[[ ! -s $W/attach1.rc ]] || e2e_die "vos attach --shared took the first terminal over"

out=$("$VOS" checkpoint "$name" --kill --dir "$W/img" --json 2>"$W/checkpoint.log") ||
  e2e_die "checkpoint --kill failed: $(cat "$W/checkpoint.log")"
J=$out
img=$(e2e_field image)
[[ $(e2e_field processes) -ge 4 ]] || e2e_die "the image holds fewer processes than bash and its jobs: $out"
e2e_wait_gone "$name" 10 "bash after checkpoint --kill"
[[ $(wait_rc "$W/attach1.rc") == 0 && $(wait_rc "$W/attach2.rc") == 0 ]] ||
  e2e_die "the attached terminals did not end with the program"

tm new-window -t u:3 "'$VOS' restore '$img' 2>'$W/restore.log'; echo restore-exit=\$? >'$W/restore.rc'; sleep 600"
wait_pane 3 "abc"
tm send-keys -t u:3 def Enter C-d
tm send-keys -t u:3 'jobs -l; ps -o pid,pgid,stat,comm' Enter
wait_pane 3 "PGID"
screen=$(pane 3)
printf '%s\n' "$screen" >"$W/screen.log"
grep -E "Stopped +sleep 300" <<<"$screen" >/dev/null || e2e_die "the stopped job is no longer listed as stopped"
grep -E "Running +sleep 400" <<<"$screen" >/dev/null || e2e_die "the background job is not running"
# Each job leads its own group, and the stopped one is in state T.
line=$(grep -E "^ *[0-9]+ +[0-9]+ +T +sleep" <<<"$screen") || e2e_die "no stopped sleep in ps"
read -r pid pgid _ <<<"$line"
[[ $pid == "$pgid" ]] || e2e_die "the stopped job lost its process group ($line)"
tm send-keys -t u:3 'fg %1' Enter
sleep 0.3
tm send-keys -t u:3 C-c
tm send-keys -t u:3 'kill %2; exit 4' Enter
[[ $(wait_rc "$W/restore.rc") == 4 ]] ||
  e2e_die "vos restore did not exit with bash's status 4: $(cat "$W/restore.rc" "$W/restore.log")"
[[ $(cat "$W/work/typed.txt") == abcdef ]] ||
  e2e_die "cat got '$(cat "$W/work/typed.txt")', wanted 'abcdef' (the line half typed before the checkpoint, then the rest)"
e2e_log "PASS: bash on a vos pty: jobs, a stopped job, unread input, shared attach, checkpoint --kill, restore"
