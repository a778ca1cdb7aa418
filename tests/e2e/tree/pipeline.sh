#!/usr/bin/env bash
# e2e process tree (runs in the test harness): a shell pipeline of four processes over 48 MiB of
# generated text (`cat | tr | rev | gzip`, every stage streaming, held back by gzip), started by
# sh, which waits for it. Checkpointed live once mid-way (the tree must run on unharmed),
# then with --kill, restored, and its output must be byte-identical to an uninterrupted run: the
# pipes between the processes with their bytes in flight, the shared open file descriptions,
# every pid and parent have to come back.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

SIZE_MIB=48
python3 - "$W/input.txt" "$SIZE_MIB" <<'PY' || e2e_die "generating the input failed"
import sys
out, mib = sys.argv[1], int(sys.argv[2])
x, lines, size = 7, [], 0
with open(out, "w") as f:
    while size < mib << 20:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        line = "line %d key%05d %016x\n" % (size, (x >> 40) % 50000, x)
        f.write(line)
        size += len(line)
PY

# shellcheck disable=SC2016  # expanded by that sh
PIPELINE='cat "$1" | tr a-f A-F | rev | gzip -c -n -6 >"$2"; echo "status $?" >"$3"'
sh -c "$PIPELINE" sh "$W/input.txt" "$W/reference.gz" "$W/reference.status" ||
  e2e_die "uninterrupted pipeline failed"

NAME=e2e-pipeline-$$-$RANDOM
e2e_vos_run "$NAME" "$W/run.log" sh -c "$PIPELINE" sh "$W/input.txt" "$W/out.gz" "$W/status"
sleep 0.6
count=$("$VOS" ps --json | python3 -c 'import json, sys
print(sum(len(p.get("processes", [])) for p in json.load(sys.stdin) if p["name"] == sys.argv[1]))' "$NAME")
((count == 5)) || e2e_die "the pipeline shows $count processes under vos ps, want 5 (sh and its 4)"
e2e_checkpoint "$NAME" "$W/img-live"
e2e_log "live checkpoint of $count processes: $(basename "$IMG")"
sleep 0.4
[[ ! -e $W/status ]] || e2e_die "the pipeline finished before the checkpoint; raise SIZE_MIB"
e2e_checkpoint "$NAME" "$W/img" --kill
[[ ! -e $W/status ]] || e2e_die "the pipeline finished before the checkpoint; raise SIZE_MIB"
processes=$("$VOS" inspect --json "$IMG" | python3 -c 'import json, sys
print(len(json.load(sys.stdin)["processes"]))')
e2e_log "checkpointed with --kill: $processes processes in $(basename "$IMG")"
((processes == 5)) || e2e_die "the image holds $processes processes, want 5"

"$VOS" restore --detach "$IMG" </dev/null >"$W/restore.log" 2>&1 ||
  e2e_die "vos restore failed: $(cat "$W/restore.log")"
e2e_wait_file "$W/status" 60 "restored pipeline"
[[ $(cat "$W/status") == "status 0" ]] || e2e_die "restored pipeline: $(cat "$W/status")"
want=$(sha256sum <"$W/reference.gz")
got=$(sha256sum <"$W/out.gz")
[[ $got == "$want" ]] ||
  e2e_die "output differs from the uninterrupted run ($(stat -c %s "$W/out.gz") vs $(stat -c %s "$W/reference.gz") bytes)"
e2e_log "PASS: pipeline of $processes processes"
