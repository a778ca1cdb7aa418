#!/usr/bin/env bash
# e2e (real program, terminal): vim started with vos run in a terminal (a window of a tmux of
# the test's own, standing for the user's terminal) gets a pty of vos's. Typed text reaches it,
# Ctrl-\ d detaches, vos attach from another window redraws the same screen, vos checkpoint
# --kill ends it, vos restore in a third window shows that screen again, typing goes on, and
# :wq saves exactly what was typed before and after the restore.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
for tool in tmux vim; do
  command -v "$tool" >/dev/null || { e2e_log "SKIP: $tool is not installed"; exit 77; }
done
name="vim-$$-$RANDOM"
E2E_NAMES+=("$name")
mkdir -p "$W/img" "$W/work"
file="$W/work/notes.txt"
# shellcheck source=tmux_terminal.sh
source "$(dirname "$0")/tmux_terminal.sh"
vimcmd="vim -u NONE -i NONE -N -n '$file'"
tm new-session -d -s u -x 90 -y 24 \
  "'$VOS' run --name '$name' -- $vimcmd; echo run-exit=\$? >'$W/run.rc'; sleep 600"
wait_pane 0 "notes.txt"
tm send-keys -t u:0 i 'hello from vos' Escape
wait_pane 0 "hello from vos"
# vim waits for its escape timeout before it leaves insert mode (and its mode line).
for ((i = 0; i < 50; i++)); do pane 0 | grep -qF -- "-- INSERT --" || break; sleep 0.1; done
tm send-keys -t u:0 C-\\ d
wait_pane 0 "vos: detached from $name"
[[ -n $(e2e_ps_pids "$name") ]] || e2e_die "vim did not run on once detached"
for ((i = 0; i < 50; i++)); do [[ -s $W/run.rc ]] && break; sleep 0.1; done
grep -q "run-exit=0" "$W/run.rc" 2>/dev/null || e2e_die "vos run did not return 0 on detach"

tm new-window -t u:1 "'$VOS' attach '$name' 2>'$W/attach.log'; echo attach-exit=\$? >'$W/attach.rc'; sleep 600"
wait_pane 1 "hello from vos"
# The whole redraw, and nothing changing any more.
before=$(pane 1)
for ((i = 0; i < 20; i++)); do
  sleep 0.2
  now=$(pane 1)
  [[ $now == "$before" ]] && break
  before=$now
done
[[ $before == *"~"* ]] || e2e_die "the attached screen lacks vim's empty-line marks: $before"

out=$("$VOS" checkpoint "$name" --kill --dir "$W/img" --json 2>"$W/checkpoint.log") ||
  e2e_die "checkpoint --kill failed: $(cat "$W/checkpoint.log")"
J=$out
img=$(e2e_field image)
e2e_wait_gone "$name" 10 "vim after checkpoint --kill"
for ((i = 0; i < 50; i++)); do [[ -s $W/attach.rc ]] && break; sleep 0.1; done
grep -q "attach-exit=0" "$W/attach.rc" 2>/dev/null || e2e_die "vos attach did not end with the program"

tm new-window -t u:2 "'$VOS' restore '$img' 2>'$W/restore.log'; echo restore-exit=\$? >'$W/restore.rc'; sleep 600"
wait_pane 2 "hello from vos"
sleep 0.3
after=$(pane 2)
if [[ $after != "$before" ]]; then
  printf '%s\n' "$before" >"$W/screen-before.log"
  printf '%s\n' "$after" >"$W/screen-after.log"
  e2e_die "the restored screen differs from the one before the checkpoint"
fi
tm send-keys -t u:2 o 'and after the restore' Escape ':wq' Enter
for ((i = 0; i < 100; i++)); do [[ -s $W/restore.rc ]] && break; sleep 0.1; done
grep -q "restore-exit=0" "$W/restore.rc" 2>/dev/null ||
  e2e_die "vos restore did not exit 0 with vim: $(cat "$W/restore.rc" "$W/restore.log" 2>/dev/null)"
want=$'hello from vos\nand after the restore'
[[ $(cat "$file") == "$want" ]] || e2e_die "saved file: '$(cat "$file")', wanted '$want'"
e2e_log "PASS: vim on a vos pty: detach, attach, checkpoint --kill, restore; the screen and the file match"
