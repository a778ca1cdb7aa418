#!/usr/bin/env bash
# e2e process tree (runs in the test harness): Python's multiprocessing.Pool of two workers
# mid-computation (a parent, its result and task threads, two forked workers, pipes between
# them, POSIX semaphores in /dev/shm that sem_unlink left reachable only through memory). It is
# checkpointed with --kill part way, restored, and its output must equal an uninterrupted run.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

cat >"$W/pool.py" <<'PY'
import hashlib, multiprocessing as mp, sys

def work(i):
    h = hashlib.sha256(str(i).encode())
    for _ in range(20000):
        h = hashlib.sha256(h.digest())
    return i, h.hexdigest()

if __name__ == "__main__":
    with open(sys.argv[1], "w", buffering=1) as out:
        with mp.Pool(2) as pool:
            for i, d in pool.imap(work, range(int(sys.argv[2]))):
                out.write("%d %s\n" % (i, d))
        out.write("done\n")
PY
TASKS=600
python3 "$W/pool.py" "$W/reference.txt" "$TASKS" || e2e_die "uninterrupted run failed"

NAME=e2e-pool-$$-$RANDOM
e2e_vos_run "$NAME" "$W/run.log" python3 "$W/pool.py" "$W/out.txt" "$TASKS"
for ((i = 0; i < 200; i++)); do
  (($(wc -l <"$W/out.txt" 2>/dev/null || echo 0) >= 40)) && break
  sleep 0.05
done
e2e_checkpoint "$NAME" "$W/img" --kill
lines=$(wc -l <"$W/out.txt")
((lines < TASKS)) || e2e_die "the pool finished before the checkpoint; raise TASKS"
processes=$("$VOS" inspect --json "$IMG" | python3 -c 'import json, sys
print(len(json.load(sys.stdin)["processes"]))')
((processes >= 3)) || e2e_die "the image holds $processes processes, want the parent and 2 workers"
e2e_log "checkpointed the pool with $lines of $TASKS results written: $processes processes"
e2e_restore_wait "$IMG" "$W/restore.log"
((WAIT_RC == 0)) || e2e_die "restored pool exited with status $WAIT_RC: $(cat "$W/restore.log")"
cmp -s "$W/reference.txt" "$W/out.txt" ||
  e2e_die "output differs from the uninterrupted run ($(wc -l <"$W/out.txt") vs $(wc -l <"$W/reference.txt") lines)"
e2e_log "PASS: multiprocessing.Pool"
