#!/usr/bin/env bash
# e2e (test harness): deleted files from the command line. Their content goes into the image up
# to --file-data-limit (a checkpoint over it is refused before anything is frozen, naming each
# file, the limit and the option); `vos inspect` shows them; `vos restore` refuses when the
# directory to recreate them in is gone, and restores them once it is back; a mapping of a
# deleted file that no fd holds is still refused, naming it.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
cd "$W"

PYTHON=${E2E_PYTHON:-}
[[ -n $PYTHON ]] || e2e_die "python3 not found"

expect_fail() {  # NEEDLE CMD...: CMD must fail and say NEEDLE on stderr
  local needle=$1 rc=0
  shift
  "$@" >"$W/out.log" 2>"$W/err.log" </dev/null || rc=$?
  ((rc != 0)) || e2e_die "'$*' succeeded; expected a failure mentioning '$needle'"
  grep -qF -- "$needle" "$W/err.log" || e2e_die "'$*' failed (rc $rc) without saying '$needle': $(cat "$W/err.log")"
  e2e_log "ok: $* -> $(head -c 300 "$W/err.log")"
}

uniq=$$-$RANDOM
mkdir "$W/d"
# A 3 MiB deleted file and a small one; on $W/check it compares both with what it wrote.
NAME=holder-$uniq
e2e_vos_run "$NAME" "$W/run.log" "$PYTHON" -c 'import hashlib, os, sys, time
w, d = sys.argv[1], sys.argv[2]
big = os.open(d + "/big.tmp", os.O_RDWR | os.O_CREAT, 0o600)
data = bytes(range(256)) * (3 << 12)
os.write(big, data)
small = os.open(d + "/small.tmp", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(small, b"small")
os.unlink(d + "/big.tmp"); os.unlink(d + "/small.tmp")
open(w + "/ready", "w").close()
while True:
    if os.path.exists(w + "/check"):
        os.remove(w + "/check")
        ok = os.pread(big, len(data) + 1, 0) == data and os.fstat(small).st_size == 5 \
            and os.readlink("/proc/self/fd/%d" % big).startswith(d + "/") \
            and os.fstat(big).st_nlink == 0
        with open(w + "/ok.tmp", "w") as f:
            f.write("OK" if ok else "BAD")
        os.rename(w + "/ok.tmp", w + "/ok")
    time.sleep(0.02)' "$W" "$W/d"
e2e_wait_file "$W/ready" 20 "holder start" "$NAME"

expect_fail "is not a size" "$VOS" checkpoint "$NAME" --file-data-limit=lots
expect_fail "over the limit of 1.0 MiB" "$VOS" checkpoint "$NAME" --dir "$W/img" --file-data-limit=1M
for needle in "$W/d/big.tmp (deleted) (3.0 MiB)" "$W/d/small.tmp (deleted) (5 bytes)" "--file-data-limit=SIZE"; do
  grep -qF -- "$needle" "$W/err.log" || e2e_die "the refusal does not name '$needle': $(cat "$W/err.log")"
done
pid=$(e2e_ps_pids "$NAME")
[[ -n $pid ]] || e2e_die "the refused program is gone"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_die "refused program is still traced"

IMG=$("$VOS" checkpoint "$NAME" --dir "$W/img" --kill --file-data-limit=4M 2>>"$W/ck.log") ||
  e2e_die "checkpoint with the limit raised failed: $(cat "$W/ck.log")"
e2e_wait_gone "$NAME" 5 "checkpoint --kill"
"$VOS" inspect "$IMG" >"$W/inspect.txt" || e2e_die "vos inspect failed"
grep -qF "big.tmp (deleted)  [deleted: recreated from 3145728 bytes in the image" "$W/inspect.txt" ||
  e2e_die "vos inspect does not show the deleted file: $(grep -F file "$W/inspect.txt")"
version=$("$VOS" inspect --json "$IMG" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["version"])')
((version == 6)) || e2e_die "an image with deleted files says version $version, want 6"

mv "$W/d" "$W/d.away"
expect_fail "but $W/d is gone" "$VOS" restore "$IMG"
mv "$W/d.away" "$W/d"
"$VOS" restore "$IMG" --detach </dev/null >"$W/restore.log" 2>&1 || e2e_die "restore failed: $(cat "$W/restore.log")"
touch "$W/check"
e2e_wait_file "$W/ok" 20 "restored holder's check" "$NAME"
[[ $(cat "$W/ok") == OK ]] || e2e_die "the restored deleted files differ"
[[ -z $(ls -A "$W/d") ]] || e2e_die "the restore left names in $W/d: $(ls -A "$W/d")"

# A private mapping whose file is gone and which no fd holds: the file's part of its content is
# nowhere vos could take it. A shared one is memory only its mappers reach (a POSIX semaphore
# after sem_unlink): kept as shared memory, its content and writes through it intact.
mapper() {  # NAME FLAGS (1 shared, 2 private)
  E2E_NAMES+=("$1")
  # (libc's mmap: Python's mmap module keeps a duplicate of the fd.)
  e2e_vos_run "$1" "$W/run-$1.log" "$PYTHON" -c 'import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
d, flags = sys.argv[1], int(sys.argv[2])
p = d + "/mapped-%d.tmp" % flags
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"m" * 8192)
addr = libc.mmap(None, 8192, 3, flags, fd, 0)
assert addr not in (None, ctypes.c_void_p(-1).value)
os.close(fd); os.unlink(p)
m = (ctypes.c_char * 8192).from_address(addr)
m[100] = b"x"
open(d + "/mapped-%d" % flags, "w").close()
while not os.path.exists(d + "/check-%d" % flags):
    time.sleep(0.02)
ok = m.raw == b"m" * 100 + b"x" + b"m" * 8091
with open(d + "/ok-%d" % flags, "w") as f:
    f.write("OK" if ok else "BAD")' "$W" "$2"
  e2e_wait_file "$W/mapped-$2" 20 "mapper start" "$1"
}
mapper "mapper-$uniq" 2
expect_fail "and no fd of the program holds it" "$VOS" checkpoint "mapper-$uniq" --dir "$W/img"
grep -qF "$W/mapped-2.tmp (deleted)" "$W/err.log" || e2e_die "the refusal does not name the file"
mapper "shared-mapper-$uniq" 1
e2e_checkpoint "shared-mapper-$uniq" "$W/img" --kill
"$VOS" restore "$IMG" --detach </dev/null >"$W/restore.log" 2>&1 ||
  e2e_die "restore of the shared mapping of a deleted file failed: $(cat "$W/restore.log")"
touch "$W/check-1"
e2e_wait_file "$W/ok-1" 20 "restored shared mapper's check" "shared-mapper-$uniq"
[[ $(cat "$W/ok-1") == OK ]] || e2e_die "the shared mapping of a deleted file came back different"
e2e_log "PASS"
