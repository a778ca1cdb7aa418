"""Part `felt` of bench/run.py: the pause a busy program feels during a live checkpoint.

mem_program runs under vos with MEM_PROGRAM_SPIN=N: N threads spin on CLOCK_MONOTONIC and the
program reports the largest gap any of them saw between two reads (stall_ms). For each size
and N (1: one core busy, vos has the other; 2: both cores busy on this 2-core machine):

  idle    the largest gap over a window as long as the checkpoint takes, with no checkpoint
          (the machine's own jitter, measured right before);
  felt    the largest gap during a live (pre-copy) checkpoint, beside vos's own `pause_ms`;
  incr    the same for the second `--incremental` checkpoint (DIRTY MiB rewritten before it);
  dd      `dd` of the same bytes with conv=fdatasync, in the same rep (checkpoint / dd).

The goal (issue 12): felt < idle + 5 ms at 16 MiB, 1 GiB and for the second incremental, one
spinner; with both cores busy vos cannot copy without taking CPU from the program, and the table
says what it costs.
"""

import os
import shutil
import time

import speed

FELT_GOAL_MS = 5.0


def _environment(**values):
    """Sets environment variables (read by mem_program and by the keeper `vos run` starts)
    for the duration of a with block."""
    class Env:
        def __enter__(self):
            self.old = {k: os.environ.get(k) for k in values}
            for k, v in values.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = str(v)

        def __exit__(self, *_):
            for k, v in self.old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return Env()


def _gap(s, h, pid, ready, size, what):
    v = h.verify(s, pid, ready, size)
    if v["status"] != "OK":
        raise h.StepError(f"mem_program memory did not verify ({what}): {v['status']}")
    return v["stall_ms"]


def felt_rep(s, h, size, spinners, dirty, rep, cpu_class=None):
    """One rep; `cpu_class` (VOS_BACKGROUND_CPU for the keeper: idle, batch, nice, off) or None
    for vos's default."""
    tag = f"felt-{size}-{spinners}-{cpu_class or 'default'}-{rep}"
    name = f"vosbench-{os.getpid()}-{tag}"
    ready = os.path.join(s.tmp, f"ready-{tag}")
    r = {"rep": rep, "spinners": spinners, "cpu_class": cpu_class}
    r["dd_ms"] = h.measure_dd(s, size)
    h.remove_dd(s)
    with _environment(MEM_PROGRAM_SPIN=spinners, VOS_BACKGROUND_CPU=cpu_class):
        h.start_under_vos(s, name, size, ready, extra=[str(dirty)])
    pid = s.find_pid(name)
    try:
        _gap(s, h, pid, ready, size, "start")  # resets the gap
        dirs = []

        def live(key, extra=()):
            d = os.path.join(s.tmp, f"img-{tag}-{key}")
            dirs.append(d)
            ck = h.checkpoint(s, name, d, size, kill=False, extra=extra)
            gap = _gap(s, h, pid, ready, size, key)
            return ck, gap

        # Idle window first, as long as a checkpoint of this size took here (dd's time as the
        # first guess), then the checkpoint: both measured the same way, back to back.
        window = max(0.3, r["dd_ms"] / 1e3)
        _gap(s, h, pid, ready, size, "before idle")
        time.sleep(window)
        r["idle_ms"] = _gap(s, h, pid, ready, size, "idle")
        r["plain"], r["felt_ms"] = live("plain")
        r["incr1"], r["felt_incr1_ms"] = live("incr1", ["--incremental"])
        speed._dirty(s, h, pid, ready, size)
        _gap(s, h, pid, ready, size, "after dirtying")
        time.sleep(max(0.3, r["incr1"]["wall_ms"] / 1e3))
        r["idle_incr_ms"] = _gap(s, h, pid, ready, size, "idle before incr2")
        r["incr2"], r["felt_incr2_ms"] = live("incr2", ["--incremental"])
        for d in dirs:
            if not s.keep:
                shutil.rmtree(d, ignore_errors=True)
    finally:
        if pid is not None:
            h.kill_and_wait(pid)
    r["ckpt_over_dd"] = speed._ratio(r["plain"]["wall_ms"], r["dd_ms"])
    return r


def summarize_felt(size, spinners, cpu_class, reps):
    def med(f):
        return speed._median([f(r) for r in reps])

    def rng(f):
        xs = [f(r) for r in reps if f(r) is not None]
        return [min(xs), max(xs)] if xs else None
    row = {"size_mib": size, "spinners": spinners, "cpu_class": cpu_class, "reps": len(reps)}
    for key, felt, idle in (("plain", "felt_ms", "idle_ms"),
                            ("incr2", "felt_incr2_ms", "idle_incr_ms")):
        row[key] = {
            "pause_ms": med(lambda r: r[key]["pause_ms"]),
            "felt_ms": med(lambda r: r[felt]), "felt_range_ms": rng(lambda r: r[felt]),
            "idle_ms": med(lambda r: r[idle]), "idle_range_ms": rng(lambda r: r[idle]),
            "felt_over_idle_ms": med(lambda r: r[felt] - r[idle]),
            "ckpt_ms": med(lambda r: r[key]["wall_ms"]),
            "background_cpu": [r[key].get("background_cpu") for r in reps],
        }
    row["dd_ms"] = med(lambda r: r["dd_ms"])
    row["ckpt_over_dd"] = med(lambda r: r["ckpt_over_dd"])
    row["goal_met"] = (spinners == 1 and row["plain"]["felt_over_idle_ms"] < FELT_GOAL_MS
                       and row["incr2"]["felt_over_idle_ms"] < FELT_GOAL_MS)
    return row


FELT_COLUMNS = ["MiB", "busy cores", "asked", "checkpoint", "ckpt ms", "vs dd", "vos pause",
                "felt", "felt range", "idle jitter", "felt-idle", "vos threads"]


def _cls(values):
    kinds = sorted({(v or "?").split(" after")[0].replace(", normal", "->normal")
                    for v in values})
    return "/".join(kinds)


def render_felt(rows, n):
    table = []
    for row in rows:
        for key, label in (("plain", "live"), ("incr2", "incr 2nd")):
            k = row[key]
            table.append([str(row["size_mib"]), str(row["spinners"]),
                          row["cpu_class"] or "default", label,
                          speed._f(k["ckpt_ms"]),
                          speed._f(row["ckpt_over_dd"], 2) if key == "plain" else "",
                          speed._f(k["pause_ms"]), speed._f(k["felt_ms"]),
                          "-".join(speed._f(x) for x in k["felt_range_ms"] or []),
                          speed._f(k["idle_ms"]), speed._f(k["felt_over_idle_ms"]),
                          _cls(k["background_cpu"])])
    return (f"felt pause: the largest gap the program's spinning threads saw during the "
            f"checkpoint, beside vos's own pause and the program's idle jitter over as long "
            f"a window; medians of {n} rep(s), ms; goal felt-idle < {FELT_GOAL_MS:.0f} ms with "
            "one busy core\n\n" + speed.render_rows(FELT_COLUMNS, table))
