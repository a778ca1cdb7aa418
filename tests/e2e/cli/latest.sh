#!/usr/bin/env bash
# e2e (test harness): images of one program sort in the order they were taken, also several in
# one second, and `vos restore --latest NAME --dir DIR` restores the newest.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
name="latest-$$-$RANDOM"
e2e_run_data_holder "$name" 4
taken=()
for i in 1 2 3 4; do
  taken+=("$("$VOS" checkpoint "$name" --dir "$W/img" 2>>"$W/ck.log")") || e2e_die "checkpoint $i failed"
done
mapfile -t sorted < <(printf '%s\n' "$W"/img/*.vos | LC_ALL=C sort)
[[ ${sorted[*]} == "${taken[*]}" ]] ||
  e2e_die "images sort as ${sorted[*]##*/}, taken as ${taken[*]##*/}"
"$VOS" checkpoint "$name" --dir "$W/junk" --kill >/dev/null 2>>"$W/ck.log"
"$VOS" restore --latest "$name" --dir "$W/img" -d </dev/null >"$W/rs.log" 2>&1 ||
  e2e_die "vos restore --latest failed: $(cat "$W/rs.log")"
from=$("$VOS" ps --json | "$E2E_PYTHON" -c 'import json, sys
print([e["restored_from"] for e in json.load(sys.stdin) if e["name"] == sys.argv[1]][0])' "$name")
[[ $from == "${taken[-1]}" ]] || e2e_die "--latest restored $from, not ${taken[-1]}"
e2e_data_check "restored with --latest"
out=$("$VOS" restore --latest "nosuch-$$" --dir "$W/img" 2>&1) && e2e_die "--latest of an unknown name succeeded"
[[ $out == *"no image of"* ]] || e2e_die "unclear error: $out"
e2e_log "PASS: ${taken[*]##*/}"
