"""Incremental checkpoints and lazy restore for bench/run.py (parts
`incremental` and `lazy`), each beside baselines measured in the same run.

The helpers of run.py (checkpoint, restore, verify, ...) come in as `h`, the
run module itself, so its StepError stays the one class main() catches.
See bench/README.md for the columns.
"""
import json
import os
import shutil
import signal
import statistics
import time

MIB = 1 << 20
PAGE = 4096
INCR_PAUSE_GOAL_MS = 5.0      # the speed issue: second checkpoint pauses < 5 ms
LAZY_RESTORE_GOAL_MS = 20.0   # the speed issue: back to running in < 20 ms


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _ratio(a, b):
    return a / b if a is not None and b else None


def _f(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def render_rows(header, rows):
    """Right-aligned columns under a header and a rule."""
    body = [header] + rows
    widths = [max(len(line[i]) for line in body) for i in range(len(header))]
    out = []
    for k, line in enumerate(body):
        out.append("  ".join(c.rjust(w) for c, w in zip(line, widths)))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def precopy_supported(s):
    """True if this vos can choose the copy-on-write snapshot over pre-copy (then the default
    live checkpoint pre-copies and `--no-precopy` is the snapshot row)."""
    _, out, err, _ = s.run([s.vos, "checkpoint", "--help"], "vos checkpoint --help", 30,
                           check=False)
    return "--no-precopy" in out + err


def run_dir():
    """Where the keeper writes NAME.lazy.json (src/keeper/registry.cc)."""
    if os.environ.get("VOS_RUN_DIR"):
        return os.environ["VOS_RUN_DIR"]
    if os.geteuid() == 0:
        return "/run/vos"
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "vos")
    return f"/tmp/vos-{os.geteuid()}"


def _dirty(s, h, pid, ready, size):
    """SIGHUP: mem_program rewrites its DIRTY_MIB and acknowledges in
    READY.dirtied. Returns its key=value facts as numbers."""
    path = ready + ".dirtied"
    if os.path.exists(path):
        os.remove(path)
    os.kill(pid, signal.SIGHUP)
    if h.wait_for_file(path, s.timeout_for(size), lambda: h.pid_alive(pid)) is None:
        raise h.StepError(f"mem_program (pid {pid}) did not acknowledge SIGHUP in {path}")
    return {k: float(v) for k, v in h.parse_kv(h.read_text(path)).items()}


def _ok(v, passes=None):
    return v["status"] == "OK" and (passes is None or v["dirty_passes"] == passes)


def _cleanup_dir(s, path):
    if not s.keep:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------
# Incremental
# --------------------------------------------------------------------------

def incremental_rep(s, h, size, dirty, layout, rep, precopy):
    """First --incremental (full), dirty DIRTY MiB, second --incremental; then
    the baselines after the same dirtying: a plain (pre-copy) checkpoint and a
    --no-precopy (snapshot) one if vos has it, dd of DIRTY MiB. Then the program is
    killed, the second incremental image restored and checked."""
    tag = f"inc-{size}-{rep}"
    name = f"vosbench-{os.getpid()}-{tag}"
    ready = os.path.join(s.tmp, f"ready-{tag}")
    dirs = {k: os.path.join(s.tmp, f"img-{tag}-{k}") for k in ("full", "incr", "plain", "precopy")}
    r = {"rep": rep, "dirty_mib": dirty, "layout": layout}

    r["dd_ms"] = h.measure_dd(s, dirty)
    h.remove_dd(s)  # small (DIRTY MiB): nothing for the VM to hand back
    h.start_under_vos(s, name, size, ready, extra=[str(dirty), layout])
    pid = s.find_pid(name)
    r["full"] = h.checkpoint(s, name, dirs["full"], size, kill=False, extra=["--incremental"])
    r["verify_after_full"] = h.verify(s, pid, ready, size)
    r["dirty"] = _dirty(s, h, pid, ready, size)
    r["incr"] = h.checkpoint(s, name, dirs["incr"], size, kill=False, extra=["--incremental"])
    r["verify_after_incr"] = h.verify(s, pid, ready, size)
    r["plain"] = h.checkpoint(s, name, dirs["plain"], size, kill=False)
    r["verify_after_plain"] = h.verify(s, pid, ready, size)
    if precopy:
        r["precopy"] = h.checkpoint(s, name, dirs["precopy"], size, kill=False,
                                    extra=["--no-precopy"])
        r["verify_after_precopy"] = h.verify(s, pid, ready, size)
    _cleanup_dir(s, dirs["plain"])
    _cleanup_dir(s, dirs["precopy"])

    # The restored program must hold the rewritten pages *and* the pass
    # counter of exactly one rewrite; the original must be gone first.
    h.kill_and_wait(pid)
    r["restore"] = h.restore(s, r["incr"]["image"], size)
    rpid = r["restore"]["pid"] or s.find_pid(name)
    r["verify_after_restore"] = h.verify(s, rpid, ready, size)
    if rpid is not None:
        h.kill_and_wait(rpid)
    _cleanup_dir(s, dirs["full"])
    _cleanup_dir(s, dirs["incr"])

    r["incr_over_dd"] = _ratio(r["incr"]["wall_ms"], r["dd_ms"])
    r["ok"] = (_ok(r["verify_after_full"], 0) and _ok(r["verify_after_incr"], 1)
               and _ok(r["verify_after_plain"], 1) and _ok(r["verify_after_restore"], 1)
               and (not precopy or _ok(r["verify_after_precopy"], 1)))
    return r


def _slowest_phase(reps, key):
    """(step, median ms) of the step with the largest median time in vos's
    `phases`: says where a checkpoint's time goes."""
    per_step = {}
    for r in reps:
        for p in r[key].get("phases") or []:
            per_step.setdefault(p.get("step"), []).append(p.get("ms"))
    if not per_step:
        return None
    step, ms = max(((k, _median(v)) for k, v in per_step.items()), key=lambda kv: kv[1] or 0)
    return [step, ms]


def summarize_incremental(size, reps):
    def med(f):
        return _median([f(r) for r in reps])

    def kind(k):
        if k not in reps[0]:
            return None
        return {"ckpt_ms": med(lambda r: r[k]["wall_ms"]),
                "tool_total_ms": med(lambda r: r[k]["total_ms"]),
                "pause_ms": med(lambda r: r[k]["pause_ms"]),
                "image_disk_bytes": med(lambda r: r[k]["disk_bytes"]),
                "reported_bytes": med(lambda r: r[k]["reported_bytes"]),
                "pages": med(lambda r: r[k]["pages"]),
                "pages_inherited": med(lambda r: r[k]["pages_inherited"]),
                "observed_stall_ms": med(lambda r: r["verify_after_" + k]["stall_ms"]),
                "slowest_phase": _slowest_phase(reps, k)}
    return {
        "size_mib": size, "dirty_mib": reps[0]["dirty_mib"], "layout": reps[0]["layout"],
        "full": kind("full"), "incr": kind("incr"), "plain": kind("plain"),
        "precopy": kind("precopy"),
        "dirty_ms": med(lambda r: r["dirty"].get("dirty_ms")),
        "dd_ms": med(lambda r: r["dd_ms"]),
        "incr_over_dd": med(lambda r: r["incr_over_dd"]),
        "incr_bytes_over_dirty": med(lambda r: r["incr"]["disk_bytes"] / (r["dirty_mib"] * MIB)),
        "restore_ms": med(lambda r: r["restore"]["wall_ms"]),
        "statuses_after_restore": [f'{r["verify_after_restore"]["status"]} '
                                   f'passes={r["verify_after_restore"]["dirty_passes"]}'
                                   for r in reps],
        "ok": all(r["ok"] for r in reps),
        "bad_reps": sum(not r["ok"] for r in reps),
    }


INCR_COLUMNS = ["MiB", "checkpoint", "ckpt ms", "vos ms", "slowest phase", "pause ms",
                "seen ms", "img MiB", "pages", "inherited", "vs dd", "goal", "verify"]


def render_incremental(rows, n, precopy_note):
    lines = []
    table = []
    for row in rows:
        size, dirty = str(row["size_mib"]), row["dirty_mib"]
        verify = "OK" if row["ok"] else f"**WRONG** {row['bad_reps']}/{n}"
        for key, label in (("full", "incr 1st (full)"), ("incr", "incr 2nd"),
                           ("plain", "plain (pre-copy)"), ("precopy", "--no-precopy")):
            k = row[key]
            if k is None:
                continue
            goal = ""
            if key == "incr":
                goal = ("pause<5 " + ("yes" if k["pause_ms"] < INCR_PAUSE_GOAL_MS else "NO")
                        + f", img/dirty {_f(row['incr_bytes_over_dirty'], 2)}")
            vs_dd = _f(row["incr_over_dd"], 2) if key == "incr" else ""
            slow = k["slowest_phase"]
            table.append([size, label, _f(k["ckpt_ms"]), _f(k["tool_total_ms"]),
                          f"{slow[0]} {_f(slow[1])}" if slow else "-", _f(k["pause_ms"]),
                          _f(k["observed_stall_ms"]), _f(k["image_disk_bytes"] / MIB),
                          _f(k["pages"], 0), _f(k["pages_inherited"], 0), vs_dd, goal,
                          verify if key == "incr" else ""])
        table.append([size, f"dd {dirty} MiB", _f(row["dd_ms"]), "", "", "", "",
                      _f(float(dirty)), "", "", "", "", ""])
        table.append([size, "restore incr", _f(row["restore_ms"]), "", "", "", "", "", "", "",
                      "", "", verify])
    lines.append(f"incremental: {rows[0]['dirty_mib']} MiB rewritten ({rows[0]['layout']}) "
                 f"between the two --incremental checkpoints; medians of {n} rep(s)\n")
    lines.append(render_rows(INCR_COLUMNS, table))
    if precopy_note:
        lines.append(precopy_note)
    for row in rows:
        if not row["ok"]:
            lines.append(f"!!! WRONG RESULTS {row['size_mib']} MiB: after restoring the "
                         f"incremental image {row['statuses_after_restore']} "
                         "(want OK passes=1); see the JSON for every check")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Lazy restore
# --------------------------------------------------------------------------

def _wait_lazy_stats(s, h, name, pid, size):
    """The keeper writes RUN_DIR/NAME.lazy.json once every page is in."""
    path = os.path.join(run_dir(), name + ".lazy.json")
    waited = h.wait_for_file(path, s.timeout_for(size), lambda: h.pid_alive(pid))
    if waited is None:
        return {"error": f"no {path} (program gone or timed out)"}
    # Written atomically by the keeper (tmp + rename), but be lenient.
    for _ in range(50):
        try:
            return json.loads(h.read_text(path))
        except ValueError:
            time.sleep(0.01)
    return {"error": f"{path} is not JSON"}


def _restore_and_work(s, h, image, size, ready, lazy, name):
    """Restore, then at once ask for the full check (which touches every page):
    its verify_ms is the fixed work the program does right after restore."""
    extra = ["--lazy", "--name", name] if lazy else ["--name", name]
    s.names.add(name)
    start = time.perf_counter()
    rst = h.restore(s, image, size, extra=extra)
    pid = rst["pid"] or s.find_pid(name)
    work = h.verify(s, pid, ready, size)
    done_wall = (time.perf_counter() - start) * 1e3
    out = {"restore": rst, "pid": pid, "work": work, "restore_to_worked_ms": done_wall}
    if lazy:
        out["lazy"] = _wait_lazy_stats(s, h, name, pid, size)
        # Every page is in now: check again (and time the same work at full speed).
        out["verify_after_done"] = h.verify(s, pid, ready, size)
    if pid is not None:
        h.kill_and_wait(pid)
    return out


def lazy_rep(s, h, size, rep):
    tag = f"lazy-{size}-{rep}"
    name = f"vosbench-{os.getpid()}-{tag}"
    ready = os.path.join(s.tmp, f"ready-{tag}")
    ckpt_dir = os.path.join(s.tmp, f"img-{tag}")
    r = {"rep": rep}
    h.start_under_vos(s, name, size, ready)
    original = s.find_pid(name)
    r["ckpt"] = h.checkpoint(s, name, ckpt_dir, size, kill=True)
    h.require_dead(original, name)
    image = r["ckpt"]["image"]
    r["read_ms"] = h.measure_cache_read(s, image, size)
    # Distinct names, so the second restore never races the keeper of the first.
    r["eager"] = _restore_and_work(s, h, image, size, ready, False, name + "-e")
    r["lazy"] = _restore_and_work(s, h, image, size, ready, True, name + "-l")
    _cleanup_dir(s, ckpt_dir)
    e, z = r["eager"], r["lazy"]
    r["slowdown"] = _ratio(z["work"]["verify_ms"], e["work"]["verify_ms"])
    r["worked_ratio"] = _ratio(z["restore_to_worked_ms"], e["restore_to_worked_ms"])
    r["ok"] = (e["work"]["status"] == "OK" and z["work"]["status"] == "OK"
               and z["verify_after_done"]["status"] == "OK"
               and not z["lazy"].get("error"))
    return r


def summarize_lazy(size, reps):
    def med(f):
        return _median([f(r) for r in reps])

    def stat(key):
        return med(lambda r: r["lazy"]["lazy"].get(key))
    return {
        "size_mib": size,
        "ckpt_kill_ms": med(lambda r: r["ckpt"]["wall_ms"]),
        "read_ms": med(lambda r: r["read_ms"]),
        "eager_restore_ms": med(lambda r: r["eager"]["restore"]["wall_ms"]),
        "eager_restore_tool_ms": med(lambda r: r["eager"]["restore"]["restore_ms"]),
        "lazy_restore_ms": med(lambda r: r["lazy"]["restore"]["wall_ms"]),
        "lazy_restore_tool_ms": med(lambda r: r["lazy"]["restore"]["restore_ms"]),
        "lazy_done_ms": stat("done_ms"), "faults": stat("faults"),
        "fault_pages": stat("fault_pages"), "zero_pages": stat("zero_pages"),
        "prefetched_pages": stat("prefetched_pages"),
        "huge_collapse_ms": stat("huge_collapse_ms"),
        "huge_collapsed_bytes": stat("huge_collapsed_bytes"),
        "eager_work_ms": med(lambda r: r["eager"]["work"]["verify_ms"]),
        "lazy_work_ms": med(lambda r: r["lazy"]["work"]["verify_ms"]),
        "lazy_work_after_done_ms": med(lambda r: r["lazy"]["verify_after_done"]["verify_ms"]),
        "slowdown": med(lambda r: r["slowdown"]),
        "eager_restore_to_worked_ms": med(lambda r: r["eager"]["restore_to_worked_ms"]),
        "lazy_restore_to_worked_ms": med(lambda r: r["lazy"]["restore_to_worked_ms"]),
        "worked_ratio": med(lambda r: r["worked_ratio"]),
        "statuses": [[r["eager"]["work"]["status"], r["lazy"]["work"]["status"],
                      r["lazy"]["verify_after_done"]["status"],
                      r["lazy"]["lazy"].get("error")] for r in reps],
        "ok": all(r["ok"] for r in reps),
        "bad_reps": sum(not r["ok"] for r in reps),
    }


LAZY_COLUMNS = ["MiB", "read ms", "eager rst", "lazy rst", "<20ms", "done ms", "collapse ms",
                "faults", "fault pg", "prefetch pg", "eager work", "lazy work", "slowdown", "work after done",
                "eager→worked", "lazy→worked", "ratio", "verify"]


def render_lazy(rows, n):
    table = []
    for row in rows:
        goal = ("yes" if row["lazy_restore_ms"] is not None
                and row["lazy_restore_ms"] < LAZY_RESTORE_GOAL_MS else "NO")
        table.append([str(row["size_mib"]), _f(row["read_ms"]), _f(row["eager_restore_ms"]),
                      _f(row["lazy_restore_ms"]), goal, _f(row["lazy_done_ms"]),
                      _f(row["huge_collapse_ms"] if row["huge_collapsed_bytes"] else None),
                      _f(row["faults"], 0), _f(row["fault_pages"], 0),
                      _f(row["prefetched_pages"], 0), _f(row["eager_work_ms"]),
                      _f(row["lazy_work_ms"]), _f(row["slowdown"], 2),
                      _f(row["lazy_work_after_done_ms"]),
                      _f(row["eager_restore_to_worked_ms"]), _f(row["lazy_restore_to_worked_ms"]),
                      _f(row["worked_ratio"], 2),
                      "OK" if row["ok"] else f"**WRONG** {row['bad_reps']}/{n}"])
    lines = [f"lazy restore vs eager restore of the same --kill image; medians of {n} rep(s); "
             "work = the program's full check of its memory right after restore\n",
             render_rows(LAZY_COLUMNS, table)]
    for row in rows:
        if not row["ok"]:
            lines.append(f"!!! WRONG RESULTS {row['size_mib']} MiB: [eager, lazy, lazy after "
                         f"done, lazy error] per rep: {row['statuses']}")
    return "\n".join(lines)
