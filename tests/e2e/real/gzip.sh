#!/usr/bin/env bash
# e2e real program (runs in the test harness): an unmodified gzip -c compresses 64 MiB of
# generated text into a file for ~5 s. It is checkpointed with --kill once the output is
# non-empty, restored, and the output must be byte-identical to an uninterrupted run: the input
# offset, the output offset (no truncation on reopen) and gzip's buffers all have to survive.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

GZIP_BIN=$(command -v gzip) || e2e_die "gzip not found"
SIZE_MIB=64

# Deterministic and compressible (words of a small vocabulary picked by an LCG), rotated per
# MiB so that gzip's 32 KiB window never sees a repeat and has real work to do.
python3 - "$W/input.dat" "$SIZE_MIB" <<'EOF' || e2e_die "generating the input failed"
import sys
out, mib = sys.argv[1], int(sys.argv[2])
vocab = [b"%s%d" % (w, n) for w in (b"alpha", b"beta", b"gamma", b"delta", b"vos", b"page",
                                     b"thread", b"signal") for n in range(40)]
x, words = 12345, []
for _ in range(200000):
    x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
    words.append(vocab[(x >> 33) % len(vocab)])
base = b" ".join(words)
with open(out, "wb") as f:
    for blk in range(mib):
        r = (blk * 7919) % len(base)
        f.write((b"block %d\n" % blk + base[r:] + base[:r])[: 1 << 20])
EOF

"$GZIP_BIN" -c -n "$W/input.dat" >"$W/reference.gz" || e2e_die "uninterrupted gzip failed"

# sh opens the output and execs gzip, so gzip's stdout is a file the restore must reopen at its
# offset, and nothing vos prints can end up in it.
NAME=e2e-gzip-$$-$RANDOM
# shellcheck disable=SC2016  # expanded by that sh, not here
e2e_vos_run "$NAME" "$W/run.log" /bin/sh -c 'exec "$0" -c -n "$1" >"$2"' \
  "$GZIP_BIN" "$W/input.dat" "$W/out.gz"
for ((i = 0; i < 400; i++)); do
  [[ -s $W/out.gz ]] && break
  sleep 0.05
done
[[ -s $W/out.gz ]] || e2e_die "gzip wrote nothing within 20 s"
sleep 0.3
e2e_checkpoint "$NAME" "$W/img" --kill
done_bytes=$(stat -c %s "$W/out.gz")
ref_bytes=$(stat -c %s "$W/reference.gz")
((done_bytes < ref_bytes)) || e2e_die "gzip finished before the checkpoint; raise SIZE_MIB"
e2e_log "checkpointed gzip with $done_bytes of $ref_bytes output bytes written"

e2e_restore_wait "$IMG" "$W/restore.log"
((WAIT_RC == 0)) || e2e_die "vos restore of gzip exited with status $WAIT_RC"
want=$(sha256sum <"$W/reference.gz")
got=$(sha256sum <"$W/out.gz")
[[ $got == "$want" ]] ||
  e2e_die "output differs from the uninterrupted run ($(stat -c %s "$W/out.gz") vs $ref_bytes bytes)"
e2e_log "PASS: gzip"
