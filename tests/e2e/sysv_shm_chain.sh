#!/usr/bin/env bash
# e2e (runs in the test harness): System V shared memory through a keeper's death, incremental
# images, vos merge and a lazy restore. A python3 program keeps 24 MiB of random data in a segment it marked
# IPC_RMID (half of a 48 MiB segment; the other half never touched but for one page) and 4 MiB in
# private memory, and rewrites some of both on request. Its segment is shared memory: never
# tracked, so every incremental image stores it in full, and a lazy restore reads it before the
# program runs. Each restore must bring back exactly the data the program last had; untouched
# segment pages must not be stored (nor allocated by the checkpoint).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_setup

NAME=e2e-shm-chain-$$-$RANDOM
IMAGES=$W/images
mkdir "$IMAGES"
E2E_NAMES+=("$NAME")
"$VOS" run --name "$NAME" --detach -- python3 -c 'import ctypes, hashlib, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
d = sys.argv[1]
size, half, page = 48 << 20, 24 << 20, 4096
sid = libc.shmget(0, size, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
assert sid >= 0, ctypes.get_errno()
seg = (ctypes.c_char * size).from_address(libc.shmat(sid, None, 0))
assert libc.shmctl(sid, 0, None) == 0  # IPC_RMID: it goes with the program
seg[0:half] = os.urandom(half)
seg[size - page:size - page + 8] = b"lastpage"
private = bytearray(os.urandom(4 << 20))
rounds = 0
def digest():
    h = hashlib.sha256(seg[0:half])
    h.update(seg[size - page:size])
    h.update(private)
    return h.hexdigest()
def reply(name, text):
    with open(os.path.join(d, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))
def segment_kib():  # what the segment holds in memory (its rss column)
    for line in open("/proc/sysvipc/shm").readlines()[1:]:
        f = line.split()
        if int(f[1]) == sid:
            return int(f[14]) >> 10
want = digest()
reply("ready", str(sid))
while True:
    if os.path.exists(os.path.join(d, "check")):
        os.remove(os.path.join(d, "check"))
        # The untouched half must still be untouched: no checkpoint allocated it.
        ok = digest() == want and segment_kib() <= (half >> 10) + 4
        reply("ok", "OK" if ok else "BAD: %d KiB in the segment" % segment_kib())
    if os.path.exists(os.path.join(d, "write")):
        os.remove(os.path.join(d, "write"))
        rounds += 1
        for i in range(0, half, 97 * page):  # every 97th page of the segment
            seg[i:i + 16] = b"round %10d" % rounds
        private[rounds * page:rounds * page + 8] = b"written!"
        want = digest()
        reply("written", str(rounds))
    time.sleep(0.02)' "$W" </dev/null >"$W/run.log" 2>&1 || e2e_die "vos run failed"
e2e_wait_file "$W/ready" 30 "program start" "$NAME"

# write: the program rewrites some of its data (and knows what it must find from then on).
write() {
  rm -f "$W/written"
  touch "$W/write"
  e2e_wait_file "$W/written" 20 "rewrite" "$NAME"
}
# ck ARGS...: checkpoint with --json; sets J and IMG. seg_pages: pages the image stores for the
# segment (all but the untouched half, whatever the image's parent has).
ck() { e2e_checkpoint_json "$NAME" "$IMAGES" "$@"; }
seg_pages() {
  "$VOS" inspect --json "$1" | python3 -c 'import json, sys
print(sum(r["npages"] for s in json.load(sys.stdin)["process"]["sysv_shm"] for r in s["pages"]))'
}
expect_segment_stored() {
  local n
  n=$(seg_pages "$1")
  ((n >= 6144 && n <= 6144 + 8)) || e2e_die "$2: $n segment pages stored, want the 6145 it holds"
}
# restore_check IMAGE WHAT [RESTORE ARGS...]: restored (detached), the program finds its data.
restore_check() {
  "$VOS" restore "$1" --detach "${@:3}" </dev/null >"$W/restore.log" 2>&1 ||
    e2e_die "$2: vos restore failed: $(cat "$W/restore.log")"
  e2e_data_check "$2"
}

# A keeper that dies leaves its program running; the next checkpoint starts a new one, which must
# join the program's IPC namespace to find its segment.
keeper=$("$VOS" ps --json | python3 -c 'import json, sys
print([e["keeper_pid"] for e in json.load(sys.stdin) if e["name"] == sys.argv[1]][0])' "$NAME")
kill -KILL "$keeper"
for ((i = 0; i < 100; i++)); do  # (until it is gone: a dying keeper still looks alive)
  kill -0 "$keeper" 2>/dev/null || break
  sleep 0.05
done
ck --incremental
IMG1=$IMG
grep -q "its keeper had died; a new one took over" "$W/checkpoint.log" ||
  e2e_die "the first checkpoint did not start a new keeper: $(cat "$W/checkpoint.log")"
expect_segment_stored "$IMG1" "first (full) image"
e2e_data_check "after the first checkpoint"
write
ck --incremental
IMG2=$IMG
[[ $(e2e_field parent) == "$IMG1" ]] || e2e_die "second checkpoint should build on $IMG1: $J"
expect_segment_stored "$IMG2" "incremental image"
write
ck --incremental --kill
IMG3=$IMG
e2e_wait_gone "$NAME" 5 "checkpoint --kill"
expect_segment_stored "$IMG3" "last incremental image"

restore_check "$IMG3" "restore of the chain"
write
ck --incremental --kill
IMG4=$IMG
[[ $(e2e_field parent) == "$IMG3" ]] || e2e_die "checkpoint after the restore should build on $IMG3: $J"
e2e_wait_gone "$NAME" 5 "checkpoint --kill after the restore"

restore_check "$IMG4" "lazy restore" --lazy
e2e_wait_file "$(e2e_run_dir)/$NAME.lazy.json" 30 "lazy restore to finish" "$NAME"
write
# (Compared page by page with the restored image: the segment is stored all the same.)
ck --incremental
IMG5=$IMG
[[ $(e2e_field parent) == "$IMG4" ]] || e2e_die "checkpoint after the lazy restore should build on $IMG4: $J"
expect_segment_stored "$IMG5" "image compared with the restored one"
e2e_data_check "after the checkpoint that compared pages"
ck --incremental --kill
IMG6=$IMG
e2e_wait_gone "$NAME" 5 "checkpoint --kill after the lazy restore"

"$VOS" merge "$IMG6" -o "$W/merged.vos" >"$W/merge.log" 2>&1 || e2e_die "vos merge: $(cat "$W/merge.log")"
expect_segment_stored "$W/merged.vos" "merged image"
for img in "$IMG1" "$IMG2" "$IMG3" "$IMG4" "$IMG5"; do mv "$img" "$img.away"; done
restore_check "$W/merged.vos" "restore of the merged image"
"$VOS" checkpoint "$NAME" --dir "$IMAGES" --kill >>"$W/checkpoint.log" 2>&1 ||
  e2e_die "final checkpoint --kill failed"
e2e_log "PASS"
