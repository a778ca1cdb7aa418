#!/usr/bin/env bash
# e2e real program (runs in the test harness): an unmodified sqlite3 shell, fed through a fifo, is
# in the middle of a write transaction (BEGIN EXCLUSIVE, an UPDATE and 500 INSERTs, its rollback
# journal on disk, its POSIX locks on the database held) when it is checkpointed with --kill and
# restored. A second sqlite3 must then find the database locked (busy: no read, no write, and
# no rollback of the journal it would otherwise take as hot) until the restored one commits,
# and the final database must be exactly what an uninterrupted run of the same input gives.
# Without the locks restored the second client rolls the transaction back under the restored
# one, which then writes into a file that is no longer its own ("database disk image is
# malformed", or rows lost).
# usage: sqlite3.sh [wal]: with `wal` the database is in WAL mode instead: the shell also maps the
# WAL index (db-shm) shared and holds POSIX locks on it, readers see the last commit meanwhile,
# and a second writer must find the database busy.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

SQLITE=$(command -v sqlite3 || true)
if [[ -z $SQLITE ]]; then
  e2e_log "SKIP: sqlite3 is not installed"
  exit 77
fi
export HOME=$W  # no ~/.sqliterc of the caller's
MODE=${1:-delete}

schema="PRAGMA journal_mode = $MODE;
CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
INSERT INTO t(v) VALUES ('before 1'), ('before 2');"
# The first part ends by writing a marker file (.output closes it), so the harness knows that
# every statement before it ran; the shell then waits on its stdin for the rest.
part1() {
  cat <<EOF
BEGIN EXCLUSIVE;
UPDATE t SET v = 'updated' WHERE id = 1;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
  INSERT INTO t(v) SELECT printf('row %d', x) FROM c;
.output $1/marker
.print ready
.output
EOF
}
part2="INSERT INTO t(v) VALUES ('after');
DELETE FROM t WHERE id = 2;
COMMIT;"

# Uninterrupted reference.
mkdir "$W/ref" "$W/work"
"$SQLITE" "$W/ref/db" "$schema" >/dev/null
{ part1 "$W/ref"; echo "$part2"; } | "$SQLITE" -bail -init /dev/null "$W/ref/db" \
  >"$W/reference.log" 2>&1 || e2e_die "uninterrupted sqlite3 run failed"
"$SQLITE" "$W/ref/db" .dump >"$W/ref/dump"

"$SQLITE" "$W/work/db" "$schema" >/dev/null
mkfifo "$W/in1" "$W/in2"
exec 3<>"$W/in1"  # held open by this shell: sqlite3 waits for more, never sees EOF
NAME=e2e-sqlite3-$$-$RANDOM
E2E_NAMES+=("$NAME")
# (3>&-: vos's own processes must not keep the fifo's write end open.)
"$VOS" run --name "$NAME" --detach -- "$SQLITE" -bail -init /dev/null "$W/work/db" \
  <"$W/in1" >"$W/run.log" 2>&1 3>&- || e2e_die "vos run sqlite3 failed"
part1 "$W/work" >&3
e2e_wait_file "$W/work/marker" 20 "sqlite3 transaction" "$NAME"
# The file the transaction lives in besides the database: the rollback journal, or the WAL
# index, which sqlite3 maps shared.
if [[ $MODE == wal ]]; then
  side=$W/work/db-shm
  pid=$(e2e_ps_pids "$NAME")
  grep -q "$side" "/proc/$pid/maps" || e2e_die "sqlite3 does not map its WAL index"
else
  side=$W/work/db-journal
fi
[[ -s $side ]] || e2e_die "sqlite3 has no $(basename "$side") in its transaction"
pid=$(e2e_ps_pids "$NAME")
grep -q "POSIX  ADVISORY  WRITE $pid " /proc/locks || e2e_die "sqlite3 holds no write lock"
# Busy: a second client may neither read nor write (-bail: its first error ends it).
expect_busy() {
  local out rc=0
  out=$("$SQLITE" -bail -init /dev/null -cmd '.timeout 0' "$W/work/db" "$1" 2>&1 3>&- 4>&-) || rc=$?
  ((rc != 0)) && [[ $out == *"database is locked"* ]] ||
    e2e_die "$2: a second sqlite3 ran '$1' on the database (status $rc: $out)"
}
# In WAL mode readers go on reading the last commit; nobody else may write.
expect_blocked() {
  if [[ $MODE == wal ]]; then
    local out
    out=$("$SQLITE" -bail -init /dev/null -cmd '.timeout 0' "$W/work/db" \
      'SELECT count(*) FROM t;' 2>&1 3>&- 4>&-) || e2e_die "$1: a reader failed: $out"
    [[ $out == 2 ]] || e2e_die "$1: a reader saw $out rows, not the 2 of the last commit"
  else
    expect_busy 'SELECT count(*) FROM t;' "$1"
  fi
  expect_busy 'BEGIN IMMEDIATE;' "$1"
}
expect_blocked "before the checkpoint"
sleep 0.3
e2e_checkpoint "$NAME" "$W/img" --kill
exec 3>&-

exec 4<>"$W/in2"
rc=0
"$VOS" restore "$IMG" --detach <"$W/in2" >"$W/restore.log" 2>&1 4>&- || rc=$?
((rc == 0)) || e2e_die "vos restore exited with status $rc"
[[ -s $side ]] || e2e_die "$(basename "$side") is gone after the restore"
expect_blocked "after the restore"
[[ -s $side ]] || e2e_die "a second client removed $(basename "$side")"
echo "$part2" >&4
exec 4>&-  # end of input: the restored sqlite3 commits and exits, as the uninterrupted one did
e2e_wait_gone "$NAME" 20 "restored sqlite3 after its input ended"
[[ $MODE == wal || ! -e $W/work/db-journal ]] ||
  e2e_die "the restored sqlite3 did not commit (journal left)"
[[ ! -s $W/run.log ]] || e2e_die "sqlite3 reported: $(cat "$W/run.log")"
check=$("$SQLITE" "$W/work/db" 'PRAGMA integrity_check;' 2>&1) || true
[[ $check == ok ]] || e2e_die "integrity check of the restored database: $check"
"$SQLITE" "$W/work/db" .dump >"$W/work/dump"
cmp -s "$W/ref/dump" "$W/work/dump" ||
  e2e_die "database differs from the uninterrupted run: $(diff "$W/ref/dump" "$W/work/dump" | head -5)"
e2e_log "PASS: sqlite3, $MODE mode ($(wc -l <"$W/work/dump") lines of dump, same as uninterrupted)"
