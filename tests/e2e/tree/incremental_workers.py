# e2e workload (tree/incremental.sh): a parent and three forked workers, each rewriting a few
# pages of its own memory every 10 ms for STEPS steps; at the end the parent writes the SHA-256
# of its memory and of each worker's to OUT (deterministic: an uninterrupted run gives the same).
import hashlib, os, sys, time
steps = int(sys.argv[1]); out = sys.argv[2]
def child(k):
    buf = bytearray(24 << 20)
    for i in range(steps):
        off = ((i * 7919 + k * 104729) % (len(buf) // 4096)) * 4096
        buf[off:off + 4096] = bytes([(i + k) % 256]) * 4096
        time.sleep(0.01)
    with open(f"{out}.{k}", "w") as f:
        f.write(hashlib.sha256(buf).hexdigest() + "\n")
    os._exit(0)
pids = []
for k in range(3):
    p = os.fork()
    if p == 0:
        child(k)
    pids.append(p)
big = bytearray(16 << 20)
for i in range(steps):
    big[(i * 4096) % len(big)] = i % 256
    time.sleep(0.01)
for p in pids:
    os.waitpid(p, 0)
with open(out, "w") as f:
    f.write(hashlib.sha256(big).hexdigest() + "\n")
    for k in range(3):
        f.write(open(f"{out}.{k}").read())
