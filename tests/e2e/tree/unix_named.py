# e2e workload: a server and two clients it forked, connected through a named unix socket (a
# path) and an abstract one. Each client sends numbered requests, keeping three in flight, and
# the server answers each with a hash chained over everything that client sent; each client
# writes the last answer to its output file. The result must be the same with a checkpoint,
# kill and restore in the middle.
import hashlib, os, select, socket, sys, time

out_dir, rounds = sys.argv[1], int(sys.argv[2])
path = os.path.join(out_dir, "server.sock")
abstract = "\0vos-e2e-named-%d" % os.getpid()
listeners = []
for address in (path, abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(address)
    s.listen(4)
    listeners.append(s)


def client(index, address):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(address)
    f = c.makefile("rwb", buffering=0)
    answer = b""
    sent = 0
    for i in range(rounds):
        while sent < min(rounds, i + 3):
            f.write(b"%d:%d\n" % (index, sent))
            sent += 1
        answer = f.readline().strip()
        assert answer, "the server went away"
        if i % 10 == 0:
            time.sleep(0.002)
    with open(os.path.join(out_dir, "client%d.txt" % index), "w") as out:
        out.write(answer.decode() + "\n")
    os._exit(0)


kids = []
for index, address in enumerate((path, abstract)):
    pid = os.fork()
    if pid == 0:
        for s in listeners:
            s.close()
        client(index, address)
    kids.append(pid)
conns = []
for s in listeners:
    conn, _ = s.accept()
    conns.append(conn)
state = {c: [hashlib.sha256(), b"", 0] for c in conns}
open(os.path.join(out_dir, "ready"), "w").close()
while any(v[2] < rounds for v in state.values()):
    readable, _, _ = select.select([c for c in conns if state[c][2] < rounds], [], [])
    for c in readable:
        data = c.recv(4096)
        assert data, "a client went away"
        h, pending, done = state[c]
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            h.update(line)
            c.sendall(h.hexdigest().encode() + b"\n")
            done += 1
        state[c] = [h, pending, done]
for pid in kids:
    _, status = os.waitpid(pid, 0)
    assert status == 0, "a client failed: %#x" % status
print("done")
