#!/usr/bin/env bash
# e2e real program (runs in the test harness): an unmodified bash runs an arithmetic loop of
# builtins only (no child processes) for ~3 s. It is checkpointed with --kill part way, restored,
# and its result must equal the one from an uninterrupted run of the same script.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

BASH_BIN=$(command -v bash)
ITERATIONS=1000000

# Redirections are done by bash itself (open/write/close), so no process is ever forked.
cat >"$W/loop.sh" <<'EOF'
dir=$1 n=$2 i=0 s=0
echo 0 >"$dir/progress"
while ((i < n)); do
  ((s += i * i % 7))
  ((i++))
  if ((i % 100000 == 0)); then
    echo "$i" >"$dir/progress"
  fi
done
echo "$s $i" >"$dir/out"
EOF

mkdir "$W/ref" "$W/work"
env -u BASH_ENV "$BASH_BIN" --norc --noprofile "$W/loop.sh" "$W/ref" "$ITERATIONS" \
  >"$W/reference.log" 2>&1 || e2e_die "uninterrupted bash run failed"

NAME=e2e-bash-$$-$RANDOM
unset BASH_ENV
e2e_vos_run "$NAME" "$W/run.log" "$BASH_BIN" --norc --noprofile "$W/loop.sh" "$W/work" \
  "$ITERATIONS"
e2e_real_checkpoint_restore_compare bash "$NAME"
