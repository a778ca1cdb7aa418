#!/usr/bin/env bash
# e2e real program (runs in the test harness): an unmodified PostgreSQL 15 in single-user mode
# (`postgres --single`) runs SQL fed on stdin with its shared memory in System V segments
# (shared_memory_type=sysv, and its dynamic shared memory too), is checkpointed with --kill in
# the middle of the work, restored, and must finish with the very output of an uninterrupted run.
# PostgreSQL keeps the id of its main segment (its lock file has it) and attaches nothing again:
# the restored segments must have the same ids, contents and addresses.
# usage: postgres.sh [sysv|default]: `default` keeps PostgreSQL's own settings (main memory in
# MAP_SHARED anonymous memory, only a small System V segment as an interlock; POSIX dynamic
# shared memory, files in /dev/shm mapped shared).
# Needs the PostgreSQL 15 server binaries (skips without them) and a user other than root
# (postgres refuses to run as root): as root it uses the `postgres` user if there is one, else
# creates the system user vos-e2e-pg with useradd (kept for later runs), else skips.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

MODE=${1:-sysv}
BIN=${E2E_PG_BIN:-/usr/lib/postgresql/15/bin}
skip() {
  e2e_log "SKIP: $*"
  exit 77
}
[[ -x $BIN/postgres && -x $BIN/initdb ]] || skip "no PostgreSQL 15 server in $BIN (apt-get install postgresql-15)"

# Who runs PostgreSQL, and how this script runs a command as that user.
if ((EUID == 0)); then
  PGUSER=postgres
  if ! id "$PGUSER" >/dev/null 2>&1; then
    PGUSER=vos-e2e-pg
    if ! id "$PGUSER" >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER" 2>"$W/useradd.log" ||
        skip "postgres refuses to run as root and useradd failed: $(cat "$W/useradd.log")"
    fi
  fi
  command -v runuser >/dev/null || skip "postgres refuses to run as root and runuser is missing"
  as_pg() { runuser -u "$PGUSER" -- env VOS_RUN_DIR="$PGRUN" TMPDIR="$PG" "$@"; }
else
  PGUSER=$(id -un)
  as_pg() { env VOS_RUN_DIR="$PGRUN" TMPDIR="$PG" "$@"; }
fi
PG=$W/pg
PGRUN=$PG/run  # that user's vos programs
mkdir -p "$PG"
if ((EUID == 0)); then
  chmod 711 "$W"
  chown "$PGUSER" "$PG"
fi
as_pg test -w "$PG" || skip "$PGUSER cannot write to $PG (a parent of $W is closed to it)"
as_pg test -x "$VOS" || skip "$PGUSER cannot run $VOS"

# Files the program has open are opened again by the restore, as that user: all of them its own.
# Its log goes to $PG, shown in the dump on failure through a link.
as_pg touch "$PG/ref.out" "$PG/out" "$PG/server.log"
ln -s "$PG/server.log" "$W/server.log"
as_pg "$BIN/initdb" -D "$PG/data" --no-sync -A trust -U postgres --no-instructions \
  >"$W/initdb.log" 2>&1 || e2e_die "initdb as $PGUSER failed"
if [[ $MODE == sysv ]]; then
  # Deterministic: no huge pages (huge_pages=try would use SHM_HUGETLB where the machine has
  # some), fsync off (speed only).
  printf '%s\n' "shared_memory_type = sysv" "dynamic_shared_memory_type = sysv" \
    "huge_pages = off" "fsync = off" >>"$PG/data/postgresql.conf"
else
  printf '%s\n' "huge_pages = off" "fsync = off" >>"$PG/data/postgresql.conf"
fi
as_pg cp -a "$PG/data" "$PG/ref-data"

# The work, one statement per line; COPY ... TO marks how far it got.
cat >"$PG/work.sql" <<EOF
CREATE TABLE t (i int PRIMARY KEY, v text)
INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 150000) g
COPY (SELECT 1) TO '$PG/progress'
UPDATE t SET v = md5(v) WHERE i % 3 = 0
UPDATE t SET v = md5(v || i) WHERE i % 5 = 0
CREATE INDEX t_v ON t (v)
UPDATE t SET v = md5(v) WHERE i % 7 = 0
SELECT count(*), md5(string_agg(v, ',' ORDER BY i)) FROM t
SELECT i, v FROM t WHERE v < '001' ORDER BY v
SELECT pg_size_pretty(pg_relation_size('t') / 1048576 * 1048576) AS about
COPY (SELECT 'done') TO '$PG/done'
EOF
chmod 644 "$PG/work.sql"

# postgres --single -D DIR postgres: stdin the work, stdout its output (the results), stderr its
# log (with times and pids: not compared).
as_pg "$BIN/postgres" --single -D "$PG/ref-data" postgres <"$PG/work.sql" >"$PG/ref.out" \
  2>"$W/ref-server.log" || e2e_die "uninterrupted postgres --single failed"
[[ -e $PG/done ]] || e2e_die "uninterrupted run did not get to the end"
rm "$PG/done" "$PG/progress"

NAME=e2e-postgres-$$-$RANDOM
E2E_NAMES+=("$NAME")
as_pg "$VOS" run --name "$NAME" --detach -- "$BIN/postgres" --single -D "$PG/data" postgres \
  <"$PG/work.sql" >"$PG/out" 2>"$PG/server.log" || e2e_die "vos run of postgres --single failed"
e2e_wait_file "$PG/progress" 60 "postgres start"
sleep 0.3  # in the middle of the updates
out=$(as_pg "$VOS" checkpoint "$NAME" --dir "$PG/img" --kill 2>"$W/checkpoint.log") ||
  e2e_die "vos checkpoint --kill of postgres --single failed"
IMG=$out
[[ ! -e $PG/done ]] || e2e_die "postgres finished before the checkpoint; give it more work"

# What the image holds: System V segments, the main one with the id the lock file names.
as_pg "$VOS" inspect --json "$IMG" >"$PG/inspect.json" || e2e_die "vos inspect failed"
read -r nseg attached lockid known < <(python3 -c 'import json, sys
p = json.load(open(sys.argv[1]))["process"]
ids = {a["shm_id"] for a in p["areas"] if a["kind"] == "sysv-shm"}
lock = open(sys.argv[2]).read().splitlines()  # line 7: shared memory key and id
lockid = int(lock[6].split()[1]) if len(lock) > 6 else -1
print(len(p["sysv_shm"]), len(ids), lockid, int(lockid in ids))' \
  "$PG/inspect.json" "$PG/data/postmaster.pid") || e2e_die "cannot read the image or the lock file"
((nseg >= 1 && attached >= 1)) || e2e_die "the image has $nseg System V segments, $attached attached"
((known == 1)) || e2e_die "the lock file names segment $lockid, which the image has not attached"
e2e_log "checkpointed postgres: $nseg System V segments ($attached attached), lock file names $lockid"

rc=0
as_pg "$VOS" restore "$IMG" </dev/null >"$W/restore.log" 2>&1 || rc=$?
((rc == 0)) || e2e_die "restored postgres --single exited with status $rc"
[[ -e $PG/done ]] || e2e_die "restored postgres did not get to the end"
cmp -s "$PG/ref.out" "$PG/out" ||
  e2e_die "output differs from the uninterrupted run: $(diff "$PG/ref.out" "$PG/out" | head -20)"
e2e_log "PASS: postgres --single ($MODE shared memory)"
