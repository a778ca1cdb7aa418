#!/usr/bin/env bash
# e2e (test harness, as root): root's vos manages every user's programs. An ordinary user's
# program is listed by root's `vos ps` (with its uid); root checkpoints it (the image is written
# as that user) and restores it as that user: it runs with the user's ids again, registered
# where the user's own vos finds it (but not lazily: see below). The user's vos never lists
# root's programs.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
e2e_setup
if ((EUID != 0)); then
  e2e_log "SKIP: needs root (it creates a user and acts for it)"
  exit 77
fi
user=vos-e2e-user
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user" ||
  { e2e_log "SKIP: cannot create a user ($user)"; exit 77; }
uid=$(id -u "$user")
vos_abs=$(command -v "$VOS")
chmod 755 "$W"
mkdir -m 777 "$W/shared"
as_user() { runuser -u "$user" -- env -u VOS_RUN_DIR "$@"; }
name="theirs-$$-$RANDOM"
E2E_NAMES+=("$name" "mine-$$")
py=/usr/bin/python3  # (root's own interpreter may live where the user cannot read)
[[ -x $py ]] || { e2e_log "SKIP: no /usr/bin/python3 for the user"; exit 77; }
as_user "$vos_abs" run -d --name "$name" -- "$py" -c 'import hashlib, os, sys, time
d = sys.argv[1]
data = os.urandom(1 << 20)
digest = hashlib.sha256(data).hexdigest()
open(os.path.join(d, "ready"), "w").close()
while True:
    if os.path.exists(os.path.join(d, "check")):
        os.remove(os.path.join(d, "check"))
        ok = hashlib.sha256(data).hexdigest() == digest and os.getuid() == int(sys.argv[2])
        open(os.path.join(d, "ok.tmp"), "w").write("OK" if ok else "BAD")
        os.rename(os.path.join(d, "ok.tmp"), os.path.join(d, "ok"))
    time.sleep(0.02)' "$W/shared" "$uid" </dev/null >/dev/null 2>&1 || e2e_die "the user's vos run failed"
e2e_wait_file "$W/shared/ready" 10 "the user's program"
"$VOS" run -d --name "mine-$$" -- sleep 100 </dev/null >/dev/null 2>&1
listed=$(env -u VOS_RUN_DIR "$VOS" ps --json)
"$E2E_PYTHON" -c 'import json, sys
e = [e for e in json.loads(sys.argv[1]) if e["name"] == sys.argv[2]]
assert e and e[0]["uid"] == int(sys.argv[3]), e' "$listed" "$name" "$uid" ||
  e2e_die "root's vos ps does not list the user's program with its uid: $listed"
[[ $(as_user "$vos_abs" ps) != *"mine-$$"* ]] || e2e_die "the user's vos ps lists root's program"
env -u VOS_RUN_DIR "$VOS" checkpoint "mine-$$" --dir "$W/img" --kill >/dev/null

img=$(env -u VOS_RUN_DIR "$VOS" checkpoint "$name" --dir "$W/shared/img" --kill 2>"$W/ck.log") ||
  e2e_die "root's checkpoint of the user's program failed: $(cat "$W/ck.log")"
[[ $(stat -c %u "$img") == "$uid" ]] || e2e_die "the image was not written by the user"
# A lazy restore as the user: the kernel would not tell the keeper of the program's forks (that
# needs CAP_SYS_PTRACE), whose children could then read zeros; with vm.unprivileged_userfaultfd=0
# it would not even give the user a userfaultfd. Refused, saying why.
rc=0
env -u VOS_RUN_DIR "$VOS" restore -d --lazy "$img" </dev/null >"$W/lazy.log" 2>&1 || rc=$?
((rc != 0)) || e2e_die "root's lazy restore of the user's image went ahead without CAP_SYS_PTRACE"
grep -Eq "CAP_SYS_PTRACE|unprivileged_userfaultfd" "$W/lazy.log" || e2e_die "the refused lazy restore does not say why: $(cat "$W/lazy.log")"
env -u VOS_RUN_DIR "$VOS" restore -d "$img" </dev/null >"$W/rs.log" 2>&1 ||
  e2e_die "root's restore of the user's image failed: $(cat "$W/rs.log")"
rm -f "$W/shared/ok"
touch "$W/shared/check"
e2e_wait_file "$W/shared/ok" 10 "the restored program's check"
[[ $(cat "$W/shared/ok") == OK ]] || e2e_die "the restored program lost its data or does not run as uid $uid"
as_user "$vos_abs" ps | grep -q "$name" || e2e_die "the user's own vos ps does not list the restored program"
as_user "$vos_abs" checkpoint "$name" --dir "$W/shared/img2" --kill >/dev/null ||
  e2e_die "the user cannot checkpoint the program root restored for them"
e2e_log "PASS"
