#!/usr/bin/env bash
# e2e (terminal): vos run from a terminal behaves like the program run directly: everything it
# writes from its first byte on shows (it writes before the terminal is attached to its vos
# pty), its exit status is vos run's, its stdin is the terminal and the pty's size is the
# terminal's. script(1) stands for the user's terminal.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
command -v script >/dev/null || { e2e_log "SKIP: script(1) (util-linux) is not installed"; exit 77; }
name="out-$$-$RANDOM"
E2E_NAMES+=("$name")
prog='echo first-line; tty; stty size; test -t 0 && echo stdin-is-a-terminal; exit 3'
rc=0
script -qec "stty rows 33 cols 97; $(printf '%q ' "$VOS" run --name "$name" -- sh -c "$prog")" \
  /dev/null </dev/null >"$W/out.log" 2>&1 || rc=$?
out=$(tr -d '\r' <"$W/out.log")
[[ $out == *first-line* ]] || e2e_die "the program's first line did not show: $out"
[[ $out == *"33 97"* ]] || e2e_die "the pty's size is not the terminal's: $out"
[[ $out == *stdin-is-a-terminal* ]] || e2e_die "stdin is not a terminal: $out"
grep -q '/dev/pts/[0-9]' <<<"$out" || e2e_die "no pty: $out"  # (script(1) types a NUL at its stdin's end)
# script(1) -e returns the child's status.
((rc == 3)) || e2e_die "exit status $rc, wanted 3: $out"
# stdout to a file, stdin and stderr the terminal: the file gets stdout only, typed input still
# reaches the program, and its stderr shows on the terminal.
name2="$name-file"
E2E_NAMES+=("$name2")
prog2='read -r line; echo "got $line"; echo on-the-terminal >&2'
script -qec "$(printf '%q ' "$VOS" run --name "$name2" -- sh -c "$prog2") >'$W/stdout.txt'" \
  /dev/null <<<"typed-words" >"$W/out2.log" 2>&1 || e2e_die "vos run with stdout to a file failed: $(cat "$W/out2.log")"
[[ $(cat "$W/stdout.txt") == "got typed-words" ]] || e2e_die "stdout file: '$(cat "$W/stdout.txt")'"
grep -q on-the-terminal "$W/out2.log" || e2e_die "stderr did not show on the terminal: $(cat "$W/out2.log")"
e2e_log "PASS: vos run on a vos pty shows all output and returns the program's status"
