"""Part `tree` of bench/run.py: checkpoint and restore of a process tree.

A shell under vos starts N mem_programs of MIB MiB each (N processes and the shell), each
measuring the largest stall of its loop (a 1 ms tick; with --tree-spin each spins on one thread
instead, which with more processes than cores measures mostly the CPU they take from each other
and from vos). Per rep:

  live     `vos checkpoint` leaving the tree running: vos's pause_ms, and the pause the
           processes felt (the largest stall of any of them);
  snapshot the same with --no-precopy (a copy-on-write snapshot of every process);
  kill     `vos checkpoint --kill`, then `vos restore --detach --json`: restore_ms (until every
           process runs again), every process's memory checked word by word;
  image    bytes of the image against the sum of the processes' memory;
  single   the same memory (N * MIB MiB) in one mem_program, live checkpoint and restore, as
           the baseline measured in the same rep.

Goals (issue 13): pause of 10 processes x 100 MiB, leave-running, < 10 ms; restore of 10 small
processes < 50 ms.
"""

import os
import statistics
import time

PAUSE_GOAL_MS = 10.0
RESTORE_GOAL_MS = 50.0


def _ready_files(s, tag, n):
    return [os.path.join(s.tmp, f"tree-{tag}-ready.{i}") for i in range(n)]


def _host_pids(s, h, name, ready_files):
    """Host pid of each mem_program (by its ready file on the command line), from vos ps."""
    for entry in s.vos_ps():
        if entry.get("name") != name:
            continue
        by_ready = {}
        for p in entry.get("processes", []):
            for r in ready_files:
                if p.get("command", "").endswith(" " + r):
                    by_ready[r] = p["host_pid"]
        if len(by_ready) == len(ready_files):
            return [by_ready[r] for r in ready_files]
    raise h.StepError(f"vos ps does not list all {len(ready_files)} processes of {name}")


def _verify_all(s, h, pids, readies, mib, what):
    stalls = []
    for pid, ready in zip(pids, readies):
        v = h.verify(s, pid, ready, mib)
        if v["status"] != "OK":
            raise h.StepError(f"tree process {pid} memory did not verify ({what}): {v['status']}")
        stalls.append(v["stall_ms"])
    return max(stalls)


def _start_tree(s, h, name, n, mib, readies):
    script = " ".join(f'"$0" {mib} "{r}" &' for r in readies) + " wait"
    cmd = [s.vos, "run", "--name", name, "--detach", "--", "sh", "-c", script, s.mem_program]
    s.names.add(name)
    s.run(cmd, "vos run --detach sh (tree of mem_programs)", s.timeout_for(n * mib))
    for r in readies:
        if h.wait_for_file(r, s.timeout_for(n * mib), h.listed_every(s, name, 1.0)) is None:
            raise h.StepError(f"tree process never wrote {r}", cmd)


def tree_rep(s, h, n, mib, rep, spin=False):
    tag = f"{n}x{mib}-{rep}"
    name = f"vosbench-{os.getpid()}-tree-{tag}"
    readies = _ready_files(s, tag, n)
    r = {"rep": rep, "processes": n, "mib": mib, "spin": spin}
    if spin:
        os.environ["MEM_PROGRAM_SPIN"] = "1"
    try:
        _start_tree(s, h, name, n, mib, readies)
        pids = _host_pids(s, h, name, readies)
        _verify_all(s, h, pids, readies, mib, "start")  # resets the stalls
        ck = h.checkpoint(s, name, os.path.join(s.tmp, f"img-tree-{tag}-live"), n * mib,
                          kill=False)
        r["live_pause_ms"] = ck["pause_ms"]
        r["live_stops_ms"] = ck.get("stops_ms")
        r["live_phases"] = ck.get("phases")
        r["live_total_ms"] = ck["total_ms"]
        r["live_felt_ms"] = _verify_all(s, h, pids, readies, mib, "after live checkpoint")
        ck = h.checkpoint(s, name, os.path.join(s.tmp, f"img-tree-{tag}-snapshot"), n * mib,
                          kill=False, extra=["--no-precopy"])
        r["snapshot_pause_ms"] = ck["pause_ms"]
        r["snapshot_felt_ms"] = _verify_all(s, h, pids, readies, mib, "after a snapshot")
        ck = h.checkpoint(s, name, os.path.join(s.tmp, f"img-tree-{tag}-kill"), n * mib,
                          kill=True)
        r["image_bytes"] = ck["reported_bytes"]
        r["memory_bytes"] = n * mib << 20
        for pid in pids:
            h.require_dead(pid, name)
        rs = h.restore(s, ck["image"], n * mib)
        r["restore_ms"] = rs["restore_ms"]
        pids = _host_pids(s, h, name, readies)
        _verify_all(s, h, pids, readies, mib, "after restore")
        r["verified"] = True
        h.kill_and_wait(pids[0])
        for pid in pids[1:]:
            h.kill_and_wait(pid)
    finally:
        os.environ.pop("MEM_PROGRAM_SPIN", None)
    # The baseline: the same memory in one process, in the same rep.
    single = f"{name}-single"
    ready = os.path.join(s.tmp, f"tree-{tag}-single-ready")
    if spin:
        os.environ["MEM_PROGRAM_SPIN"] = "1"
    try:
        h.start_under_vos(s, single, n * mib, ready)
    finally:
        os.environ.pop("MEM_PROGRAM_SPIN", None)
    pid = s.find_pid(single)
    h.verify(s, pid, ready, n * mib)
    ck = h.checkpoint(s, single, os.path.join(s.tmp, f"img-tree-{tag}-single"), n * mib,
                      kill=False)
    r["single_pause_ms"] = ck["pause_ms"]
    v = h.verify(s, pid, ready, n * mib)
    r["single_felt_ms"] = v["stall_ms"]
    ck = h.checkpoint(s, single, os.path.join(s.tmp, f"img-tree-{tag}-single-kill"), n * mib,
                      kill=True)
    h.require_dead(pid, single)
    rs = h.restore(s, ck["image"], n * mib)
    r["single_restore_ms"] = rs["restore_ms"]
    pid = s.find_pid(single)
    if h.verify(s, pid, ready, n * mib)["status"] != "OK":
        raise h.StepError("single baseline memory did not verify after restore")
    h.kill_and_wait(pid)
    return r


def summarize_tree(n, mib, reps):
    def med(key):
        xs = [x[key] for x in reps if x.get(key) is not None]
        return statistics.median(xs) if xs else None
    return {"processes": n, "mib": mib, "reps": len(reps),
            "live_pause_ms": med("live_pause_ms"), "live_felt_ms": med("live_felt_ms"),
            "snapshot_pause_ms": med("snapshot_pause_ms"),
            "snapshot_felt_ms": med("snapshot_felt_ms"),
            "restore_ms": med("restore_ms"), "image_bytes": med("image_bytes"),
            "memory_bytes": n * mib << 20, "single_pause_ms": med("single_pause_ms"),
            "single_felt_ms": med("single_felt_ms"),
            "single_restore_ms": med("single_restore_ms"),
            "ok": all(x.get("verified") for x in reps)}


def render_tree(rows, fmt):
    out = ["process trees (medians, ms; 'single' = the same memory in one process, same rep)",
           "| processes x MiB | vos pause | felt | --no-precopy pause | felt | single pause | "
           "single felt | restore | single restore | image / memory |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["image_bytes"] / r["memory_bytes"] if r["image_bytes"] else None
        out.append(f"| {r['processes']} x {r['mib']} | {fmt(r['live_pause_ms'])} | "
                   f"{fmt(r['live_felt_ms'])} | {fmt(r.get('snapshot_pause_ms'))} | "
                   f"{fmt(r.get('snapshot_felt_ms'))} | {fmt(r['single_pause_ms'])} | "
                   f"{fmt(r['single_felt_ms'])} | {fmt(r['restore_ms'])} | "
                   f"{fmt(r['single_restore_ms'])} | {fmt(ratio, 2)} |")
    out.append(f"goals: pause of 10 x 100 MiB < {PAUSE_GOAL_MS:.0f} ms; restore of 10 small "
               f"processes < {RESTORE_GOAL_MS:.0f} ms")
    return "\n".join(out)
