# shellcheck shell=bash
# For the terminal cases: a tmux server of the test's own (socket in $W) stands for the user's
# terminal; its windows run vos run / vos attach / vos restore. Source after e2e_setup.
tm() { tmux -S "$W/outer.sock" -f /dev/null "$@"; }
pane() { tm capture-pane -p -t "u:$1"; }
# Waits until window $1 shows text $2.
wait_pane() {
  local i
  for ((i = 0; i < 100; i++)); do
    pane "$1" | grep -qF -- "$2" && return 0
    sleep 0.1
  done
  pane "$1" >"$W/pane-$1.log" 2>&1 || true
  e2e_die "window $1 never showed '$2' (its screen is in pane-$1.log)"
}
# A file a window writes "WHAT-exit=N" to when its command ends: waits for it, prints N.
wait_rc() {
  local i
  for ((i = 0; i < 100; i++)); do [[ -s $1 ]] && break; sleep 0.1; done
  sed 's/.*=//' "$1" 2>/dev/null
}
