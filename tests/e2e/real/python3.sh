#!/usr/bin/env bash
# e2e real program (runs in the test harness): an unmodified python3 interpreter builds a dict
# and a sliding list and feeds a running sha256 for ~3 s. It is checkpointed with --kill part
# way (after its first progress file, before its output), restored, and its final hash must
# equal the one from an uninterrupted run of the same script.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

# The interpreter itself, not a launcher shim (pyenv's would run under vos as a shell script).
PYTHON=${E2E_PYTHON:-}
[[ -n $PYTHON ]] || e2e_die "python3 not found"
ITERATIONS=2000000

cat >"$W/loop.py" <<'EOF'
import hashlib, os, sys

work, n = sys.argv[1], int(sys.argv[2])

def progress(i):
    with open(os.path.join(work, "progress.tmp"), "w") as f:
        f.write("%d\n" % i)
    os.replace(os.path.join(work, "progress.tmp"), os.path.join(work, "progress"))

h = hashlib.sha256()
d = {}
window = []
for i in range(n):
    k = (i * 2654435761) % 1000003
    d[k] = d.get(k, 0) + i
    window.append(k ^ i)
    if len(window) > 4096:
        del window[:2048]
    h.update(b"%d:%d:%d:%d" % (i, k, d[k], sum(window[-8:])))
    if i % 50000 == 0:
        progress(i)
h.update(repr(sorted(d.items())[:1000]).encode())
with open(os.path.join(work, "out"), "w") as f:
    f.write("%s %d %d\n" % (h.hexdigest(), len(d), len(window)))
EOF

mkdir "$W/ref" "$W/work"
PYTHONHASHSEED=0 "$PYTHON" "$W/loop.py" "$W/ref" "$ITERATIONS" >"$W/reference.log" 2>&1 ||
  e2e_die "uninterrupted python3 run failed"

NAME=e2e-python3-$$-$RANDOM
export PYTHONHASHSEED=0
e2e_vos_run "$NAME" "$W/run.log" "$PYTHON" "$W/loop.py" "$W/work" "$ITERATIONS"
e2e_real_checkpoint_restore_compare python3 "$NAME"
