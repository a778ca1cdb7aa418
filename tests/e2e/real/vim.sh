#!/usr/bin/env bash
# e2e real program (runs in the test harness): an unmodified vim (in Ex mode, no terminal) bounds
# a search with a timeout, which vim implements with a POSIX timer (timer_create, SIGEV_THREAD:
# glibc aims the kernel timer at a helper thread that runs vim's callback). The timer is created
# by a first search before the checkpoint; after a --kill and restore, vim re-arms the same timer
# id for a second search, whose pattern would backtrack for half a minute without the timeout.
# Both searches must stop at about their 300 ms timeout.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

VIM=$(command -v vim.basic || command -v vim || true)
if [[ -z $VIM ]]; then
  e2e_log "SKIP: vim is not installed"
  exit 77
fi

# \%#=1: the backtracking engine, exponential on this line for this pattern (~30 s untimed).
cat >"$W/search.vim" <<'EOF'
call setline(1, repeat('a', 38) . 'b')
function Timed()
  let t = reltime()
  call search('\%#=1\v^(a|aa)*$', '', 0, 300)
  return reltimefloat(reltime(t))
endfunction
let first = Timed()
call writefile(['ready'], $E2E_WORK . '/ready')
sleep 2
let second = Timed()
call writefile([printf('%.3f %.3f', first, second)], $E2E_WORK . '/out')
qa!
EOF

mkdir "$W/work"
NAME=e2e-vim-$$-$RANDOM
export E2E_WORK=$W/work
cd "$W"  # anything vim leaves behind (-n: it keeps no swap file) stays in the case directory
e2e_vos_run "$NAME" "$W/run.log" "$VIM" -es -n -N -u NONE -i NONE -S "$W/search.vim"
e2e_wait_file "$W/work/ready" 20 "vim start" "$NAME"
grep -q "^ID:" "/proc/$(e2e_ps_pids "$NAME")/timers" || e2e_die "vim has no POSIX timer to checkpoint"
sleep 0.3
e2e_checkpoint "$NAME" "$W/img" --kill
[[ ! -e $W/work/out ]] || e2e_die "vim finished before the checkpoint"
e2e_restore_wait "$IMG" "$W/restore.log"
((WAIT_RC == 0)) || e2e_die "vos restore exited with status $WAIT_RC"
[[ -f $W/work/out ]] || e2e_die "restored vim wrote no output"
read -r first second <"$W/work/out"
e2e_log "searches took $first s before the checkpoint and $second s after the restore"
python3 -c 'import sys; sys.exit(0 if all(0.25 <= float(x) <= 2 for x in sys.argv[1:]) else 1)' \
  "$first" "$second" || e2e_die "a search did not stop at its 300 ms timeout: $first s, $second s"
e2e_log "PASS: vim"
