#!/usr/bin/env bash
# e2e process tree (runs in the test harness): a server and two clients it forked, talking over a
# named and an abstract unix stream socket with requests in flight. Checkpointed with --kill part
# way and restored, each client's last answer (a hash over everything it sent) must equal an
# uninterrupted run's.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

ROUNDS=4000
mkdir -p "$W/ref" "$W/run"
python3 "$(dirname "$0")/unix_named.py" "$W/ref" "$ROUNDS" >/dev/null || e2e_die "uninterrupted run failed"

NAME=e2e-unix-named-$$-$RANDOM
e2e_vos_run "$NAME" "$W/run.log" python3 "$(dirname "$0")/unix_named.py" "$W/run" "$ROUNDS"
e2e_wait_file "$W/run/ready" 20 "the server's connections" "$NAME"
sleep 0.3
e2e_checkpoint "$NAME" "$W/img" --kill
[[ ! -e $W/run/client0.txt || ! -e $W/run/client1.txt ]] || e2e_die "the clients finished before the checkpoint; raise ROUNDS"
e2e_restore_wait "$IMG" "$W/restore.log"
((WAIT_RC == 0)) || e2e_die "restored server exited with status $WAIT_RC: $(cat "$W/restore.log")"
for i in 0 1; do
  cmp -s "$W/ref/client$i.txt" "$W/run/client$i.txt" ||
    e2e_die "client $i: '$(cat "$W/run/client$i.txt" 2>/dev/null)', want '$(cat "$W/ref/client$i.txt")'"
done
e2e_log "PASS: named and abstract unix sockets between processes"
