#!/usr/bin/env bash
# e2e (test harness): a restored copy must not silently take a unix socket path from the running
# original (new clients would reach only the copy). The restore is refused, saying why and how to
# restore anyway (--take-unix-sockets); once the original is gone, a plain restore binds the path
# again; with --take-unix-sockets the copy answers on it.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
cd "$W"
uniq=$$-$RANDOM
name="srv-$uniq"
sock="$W/srv.sock"

# A server answering each connection with its own name, which a restore keeps.
E2E_NAMES+=("$name" "copy-$uniq")
"$VOS" run -d --name "$name" -- "$E2E_PYTHON" -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
open(sys.argv[1] + ".ready", "w").close()
while True:
    c, _ = s.accept()
    c.sendall(b"served by %d\n" % os.getpid())
    c.close()' "$sock" </dev/null >"$W/srv.log" 2>&1 || e2e_die "vos run of the server failed"
e2e_wait_file "$sock.ready" 10 "server start"
ask() { "$E2E_PYTHON" -c 'import socket, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1])
print(c.recv(100).decode().strip())' "$sock"; }
[[ $(ask) == "served by "* ]] || e2e_die "the server does not answer"

"$VOS" checkpoint "$name" --dir "$W/img" >/dev/null 2>>"$W/ck.log" || e2e_die "checkpoint failed"
img=$(ls "$W"/img/*.vos)
rc=0
"$VOS" restore --name "copy-$uniq" -d "$img" </dev/null >"$W/refused.log" 2>&1 || rc=$?
((rc != 0)) || e2e_die "a restored copy took $sock from the running original"
grep -q "a running program listens there" "$W/refused.log" &&
  grep -q -- "--take-unix-sockets" "$W/refused.log" ||
  e2e_die "the refusal does not say why and how: $(cat "$W/refused.log")"
[[ $(ask) == "served by "* ]] || e2e_die "the original no longer answers after the refused restore"
e2e_log "ok: refused: $(cat "$W/refused.log")"

"$VOS" restore --name "copy-$uniq" -d --take-unix-sockets "$img" </dev/null >>"$W/take.log" 2>&1 ||
  e2e_die "restore with --take-unix-sockets failed: $(cat "$W/take.log")"
[[ $(ask) == "served by "* ]] || e2e_die "nobody answers on $sock after --take-unix-sockets"
"$VOS" checkpoint "copy-$uniq" --dir "$W/img2" --kill >/dev/null 2>>"$W/ck.log"

# Original gone (its socket file left behind): a plain restore binds the path again.
"$VOS" checkpoint "$name" --dir "$W/img3" --kill >/dev/null 2>>"$W/ck.log"
[[ -S $sock ]] || e2e_die "the socket file is gone; the test wants it left behind"
"$VOS" restore -d "$img" </dev/null >"$W/plain.log" 2>&1 || e2e_die "restore after the original ended failed: $(cat "$W/plain.log")"
[[ $(ask) == "served by "* ]] || e2e_die "the restored server does not answer"
e2e_log "PASS"
