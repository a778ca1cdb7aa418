#!/usr/bin/env bash
# e2e real program (runs in the test harness): an unmodified OpenJDK JVM (a dozen threads, the JIT,
# the garbage collector) runs a small program that opens /dev/random through SecureRandom and
# feeds a running SHA-256 for a few seconds. The JVM holds a flock on its /tmp/hsperfdata_USER/PID
# file only through a mapping of it (the descriptor is closed), and keeps one end of a socketpair
# whose other end it closed (NIO's pre-close descriptor). It is checkpointed with --kill part way,
# restored, and must: hold that flock again while it runs (another process cannot take it), and
# write the same result as an uninterrupted run. A second JVM started under vos beside it must
# not see the same pid (every JVM under vos was pid 2 once, sharing the hsperfdata file).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
e2e_setup

JAVA=$(command -v java || true)
JAVAC=$(command -v javac || true)
if [[ -z $JAVA || -z $JAVAC ]]; then
  e2e_log "SKIP: java and javac are not installed (setup.sh installs openjdk-17-jdk-headless)"
  exit 77
fi
ITERATIONS=6000000

mkdir "$W/src" "$W/ref" "$W/work" "$W/other"
cat >"$W/src/Loop.java" <<'JAVA'
import java.nio.file.*;
import java.security.*;
import java.util.*;

public class Loop {
  static void progress(String work, long i) throws Exception {
    Path tmp = Paths.get(work, "progress.tmp");
    Files.write(tmp, (i + "\n").getBytes());
    Files.move(tmp, Paths.get(work, "progress"), StandardCopyOption.ATOMIC_MOVE);
  }

  public static void main(String[] a) throws Exception {
    String work = a[0];
    long n = Long.parseLong(a[1]);
    Files.write(Paths.get(work, "pid"), (ProcessHandle.current().pid() + "\n").getBytes());
    SecureRandom random = new SecureRandom();  // opens /dev/random and /dev/urandom
    random.nextInt();
    MessageDigest h = MessageDigest.getInstance("SHA-256");
    HashMap<Long, Long> d = new HashMap<>();
    ArrayList<Long> window = new ArrayList<>();
    for (long i = 0; i < n; i++) {
      long k = (i * 2654435761L) % 1000003;
      d.merge(k, i, Long::sum);
      window.add(k ^ i);
      if (window.size() > 4096) window.subList(0, 2048).clear();
      h.update((i + ":" + k + ":" + d.get(k)).getBytes());
      if (i % 200000 == 0) progress(work, i);
    }
    StringBuilder sb = new StringBuilder();
    for (byte b : h.digest()) sb.append(String.format("%02x", b));
    Files.write(Paths.get(work, "out"), (sb + " " + d.size() + " " + window.size() + "\n").getBytes());
  }
}
JAVA
"$JAVAC" -d "$W/src" "$W/src/Loop.java" 2>"$W/javac.log" || e2e_die "javac failed"
"$JAVA" -cp "$W/src" Loop "$W/ref" "$ITERATIONS" >"$W/reference.log" 2>&1 ||
  e2e_die "uninterrupted java run failed"

# perf_file_locked PID: whether another process finds the JVM's hsperfdata file locked.
perf_file_locked() {
  local f=/tmp/hsperfdata_$(id -un)/$1
  [[ -f $f ]] || e2e_die "JVM $1 has no $f"
  ! flock -n -s "$f" true
}

NAME=e2e-java-$$-$RANDOM
e2e_vos_run "$NAME" "$W/run.log" "$JAVA" -cp "$W/src" Loop "$W/work" "$ITERATIONS"
e2e_wait_file "$W/work/progress" 30 "java start" "$NAME"
JPID=$(cat "$W/work/pid")
OTHER=e2e-java-other-$$-$RANDOM
e2e_vos_run "$OTHER" "$W/other.log" "$JAVA" -cp "$W/src" Loop "$W/other" 200000000
e2e_wait_file "$W/other/pid" 30 "second java start" "$OTHER"
[[ $(cat "$W/other/pid") != "$JPID" ]] || e2e_die "two JVMs under vos both see pid $JPID"
kill "$(e2e_ps_pids "$OTHER" | head -1)"
e2e_wait_gone "$OTHER" 10 "kill of the second JVM"
perf_file_locked "$JPID" || e2e_die "JVM $JPID does not hold its hsperfdata lock before the checkpoint"
sleep 0.5
e2e_checkpoint "$NAME" "$W/img" --kill
[[ ! -e $W/work/out ]] || e2e_die "java finished before the checkpoint; raise ITERATIONS"
at=$(cat "$W/work/progress")
e2e_log "checkpointed java (pid $JPID in its namespace) at iteration $at"

"$VOS" restore "$IMG" </dev/null >"$W/restore.log" 2>&1 &
RESTORE=$!
E2E_BG_PIDS+=("$RESTORE")
for ((i = 0; i < 200; i++)); do
  [[ $(cat "$W/work/progress") == "$at" ]] || break
  kill -0 "$RESTORE" 2>/dev/null || break
  sleep 0.05
done
[[ $(cat "$W/work/progress") != "$at" || -e $W/work/out ]] || e2e_die "restored java makes no progress"
[[ -e $W/work/out ]] || perf_file_locked "$JPID" ||
  e2e_die "restored JVM does not hold the flock on its hsperfdata file"
e2e_wait_pid "$RESTORE" 60 "vos restore"
((WAIT_RC == 0)) || e2e_die "vos restore exited with status $WAIT_RC"
[[ -f $W/work/out ]] || e2e_die "restored java wrote no output"
cmp -s "$W/ref/out" "$W/work/out" ||
  e2e_die "result differs: restored '$(cat "$W/work/out")', uninterrupted '$(cat "$W/ref/out")'"
e2e_log "PASS: java"
