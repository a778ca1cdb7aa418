"""Running-cost figures for bench/run.py: single calls (Google Benchmark) and a
CPU-bound loop, each run bare and under `vos run` in the same session.

Both workloads run in the foreground (`vos run -- PROG`), the way a user would
wrap a program, and write their results to stdout, which the runner sends to a
file: that also checks that nothing vos prints ends up in the program's output.
"""
import json
import statistics

# Goals from the speed issue, printed next to the figures.
MICRO_GOAL_NS = 30.0
CPU_GOAL = "no measurable slowdown"


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _parse_benchmark_json(stdout, what, cmd, stderr, error_cls):
    """Google Benchmark's JSON -> {case: ns per call}. Anything else on stdout
    (a notice from vos, say) makes this fail loudly rather than be skipped."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        raise error_cls(f"{what}: stdout is not Google Benchmark JSON (did something else write "
                        f"to it?): {stdout[:300]!r}", cmd, 0, stderr)
    out = {}
    for b in doc.get("benchmarks", []):
        if b.get("error_occurred"):
            raise error_cls(f"{what}: case {b.get('name')} failed: {b.get('error_message')}",
                            cmd, 0, stderr)
        # With repetitions only the aggregates are reported; the median is the one to keep.
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        out[b.get("run_name", b["name"]).removeprefix("BM_")] = b["real_time"] * scale
    if not out:
        raise error_cls(f"{what}: no benchmark results in its JSON", cmd, 0, stderr)
    return out, doc.get("context", {})


def measure_micro(s, program, rounds, min_time, error_cls, repetitions=3):
    """Per case: ns per call bare and under vos. Rounds alternate bare and vos
    runs so drift of a shared machine hits both; within a run each case is
    repeated and its median kept (a burst of a neighbour's work spoils one
    repetition, not the figure); each figure is then the median over rounds,
    and the difference is taken between those medians."""
    args = [program, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
            f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"]
    samples = {"bare": [], "vos": []}
    context = None
    for _ in range(rounds):
        for mode in ("bare", "vos"):
            cmd = args if mode == "bare" else [s.vos, "run", "--"] + args
            what = f"micro_calls ({mode})"
            _, stdout, stderr, _ = s.run(cmd, what, 600)
            per_case, ctx = _parse_benchmark_json(stdout, what, cmd, stderr, error_cls)
            samples[mode].append(per_case)
            context = context or ctx
    cases = []
    for name in samples["bare"][0]:
        bare = _median([r.get(name) for r in samples["bare"]])
        vos = _median([r.get(name) for r in samples["vos"]])
        bare_samples = [r[name] for r in samples["bare"] if name in r]
        vos_samples = [r[name] for r in samples["vos"] if name in r]
        # How far one mode's rounds disagree among themselves: a difference
        # smaller than that is not a measured cost of vos.
        spread = max(max(x) - min(x) for x in (bare_samples, vos_samples))
        cases.append({"case": name, "bare_ns": bare, "vos_ns": vos,
                      "diff_ns": None if bare is None or vos is None else vos - bare,
                      "spread_ns": spread,
                      "bare_samples_ns": [r.get(name) for r in samples["bare"]],
                      "vos_samples_ns": [r.get(name) for r in samples["vos"]]})
    return {"rounds": rounds, "min_time": min_time, "repetitions": repetitions,
            "goal_diff_ns": MICRO_GOAL_NS,
            "context": {k: context.get(k) for k in
                        ("num_cpus", "mhz_per_cpu", "cpu_scaling_enabled", "library_build_type")},
            "cases": cases}


def _parse_cpu_line(stdout):
    fields = dict(kv.split("=", 1) for kv in stdout.split() if "=" in kv)
    return float(fields["work_ms"]), float(fields["cpu_ms"]), fields["result"]


def measure_cpu(s, program, millions, reps, error_cls):
    """The CPU-bound loop bare and under vos, interleaved. The program times
    its own loop, so vos's start-up cost is not in these numbers (that is the
    launch figure); the slowdown is the ratio of medians."""
    runs = {"bare": [], "vos": []}
    for _ in range(reps):
        for mode in ("bare", "vos"):
            cmd = [program, str(millions)]
            if mode == "vos":
                cmd = [s.vos, "run", "--"] + cmd
            what = f"cpu_program ({mode})"
            wall_ms, stdout, stderr, _ = s.run(cmd, what, 600)
            try:
                work, cpu, result = _parse_cpu_line(stdout)
            except (KeyError, ValueError):
                raise error_cls(f"{what}: unexpected output {stdout[:300]!r}", cmd, 0, stderr)
            runs[mode].append({"work_ms": work, "cpu_ms": cpu, "result": result,
                               "process_wall_ms": wall_ms})
    results = {r["result"] for mode in runs for r in runs[mode]}
    out = {"millions": millions, "reps": reps, "runs": runs, "same_result": len(results) == 1}
    for key in ("work_ms", "cpu_ms", "process_wall_ms"):
        bare = _median([r[key] for r in runs["bare"]])
        vos = _median([r[key] for r in runs["vos"]])
        out[key] = {"bare": bare, "vos": vos, "ratio": vos / bare if bare else None}
    return out


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _f(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def micro_verdict(case, goal_ns):
    """yes: under the goal; noise: over it, but within what repeated runs of
    the same mode disagree by; NO: over it beyond the noise."""
    diff = case["diff_ns"]
    if diff is None:
        return "-"
    if diff < goal_ns:
        return "yes"
    return "noise" if diff <= case["spread_ns"] else "NO"


def render_micro(m):
    rows = [[c["case"], _f(c["bare_ns"]), _f(c["vos_ns"]), _f(c["diff_ns"], 1),
             _f(c["spread_ns"], 1), micro_verdict(c, m["goal_diff_ns"])] for c in m["cases"]]
    head = (f"single calls (Google Benchmark, ns per call, medians of {m['rounds']} alternating "
            f"rounds of medians of {m.get('repetitions', 1)}; goal: under vos < "
            f"{m['goal_diff_ns']:.0f} ns more)")
    return head + "\n" + _table(["case", "bare ns", "vos ns", "diff ns", "spread ns", "< goal"],
                                 rows)


def render_cpu(c):
    rows = []
    for key, label in (("cpu_ms", "loop CPU time"), ("work_ms", "loop wall time"),
                       ("process_wall_ms", "whole process (incl. start)")):
        v = c[key]
        rows.append([label, _f(v["bare"]), _f(v["vos"]), _f(v["ratio"], 3)])
    head = (f"CPU-bound loop ({c['millions']}M splitmix64 steps, medians of {c['reps']} "
            f"alternating runs; goal: {CPU_GOAL})")
    text = head + "\n" + _table(["measure", "bare ms", "vos ms", "vos/bare"], rows)
    if not c["same_result"]:
        text += "\n**WRONG** bare and vos runs computed different results"
    return text


def render_pause(rows):
    """Pause against touched memory: the figure the issue asks for, 16 MiB to
    4 GiB, with the program's own view of its stall beside vos's."""
    body = []
    for r in rows:
        pause = r["pause_ms"]
        per_gib = None if pause is None else pause / (r["size_mib"] / 1024)
        body.append([str(r["size_mib"]), _f(pause), _f(r["observed_stall_ms"]), _f(per_gib),
                     _f(r["ckpt_ms"])])
    return ("checkpoint pause vs touched memory (program keeps running; medians)\n" +
            _table(["MiB", "pause ms", "seen ms", "pause ms/GiB", "ckpt ms"], body))
