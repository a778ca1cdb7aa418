#!/usr/bin/env bash
# e2e (test harness): vos checkpoint --page-cache=no writes the memory pages straight to the disk
# (O_DIRECT): the image is then not in the page cache (fincore), unlike with --page-cache=yes,
# and it restores to a program whose data is intact. With --compress it is refused, saying why.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup

NAME=e2e-pagecache-$$-$RANDOM
e2e_run_data_holder "$NAME" 64

# cached_percent IMAGE: how much of the image file is in the page cache.
cached_percent() {
  local res size
  res=$(fincore --bytes --noheadings --output RES "$1" | tr -d ' ')
  size=$(stat -c %s "$1")
  echo $((res * 100 / size))
}

e2e_checkpoint_json "$NAME" "$W/img-no" --page-cache=no
[[ $(e2e_field page_cache_bypassed) == True ]] || e2e_die "--page-cache=no did not bypass it: $J"
no=$(cached_percent "$IMG")
e2e_checkpoint_json "$NAME" "$W/img-yes" --page-cache=yes
[[ $(e2e_field page_cache_bypassed) == False ]] || e2e_die "--page-cache=yes bypassed it: $J"
yes=$(cached_percent "$IMG")
e2e_log "in the page cache after the checkpoint: ${no}% with --page-cache=no, ${yes}% with yes"
((no <= 10)) || e2e_die "--page-cache=no left ${no}% of the image in the page cache"
((yes >= 80)) || e2e_die "--page-cache=yes left only ${yes}% of the image in the page cache"
e2e_data_check "after the checkpoints"

rc=0
"$VOS" checkpoint "$NAME" --dir "$W/img-z" --page-cache=no --compress=zstd >"$W/z.out" 2>"$W/z.err" || rc=$?
((rc != 0)) || e2e_die "--page-cache=no --compress=zstd succeeded"
grep -q "compressed" "$W/z.err" || e2e_die "refused without saying why: $(cat "$W/z.err")"

IMG=$("$VOS" checkpoint "$NAME" --dir "$W/img-kill" --page-cache=no --kill 2>"$W/kill.err") ||
  e2e_die "checkpoint --page-cache=no --kill failed: $(cat "$W/kill.err")"
e2e_wait_gone "$NAME" 5 "checkpoint --kill"
e2e_restore_and_check "$IMG" "after the restore"
e2e_log "PASS"
