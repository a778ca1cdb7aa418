"""Part `terminal` of bench/run.py (also runs alone: python3 bench/terminal.py --vos PATH).

The program's vos pty against a bare pty, in the same run. The "user's terminal" is a pty this
script holds the master of; the program runs on its slave either directly (bare) or under
`vos run` (which gives it a vos pty and relays this terminal to it: keeper thread, screen model,
CLI, two more hops each way).

  keystroke  a program that echoes every byte itself (`stty raw -echo; cat`, as vim or a shell
             does): the time from writing one key to the master until its echo is read back,
             N keys one after the other; the median and 99th percentile, bare and under vos.
  output     `cat` of a 100 MiB text file to the terminal, read as fast as the master gives it:
             the time until the program has ended and all its output is read, bare and under vos.

Goals (issue 13): < 1 ms added to a keystroke at the median; output within 1.2x of bare.
"""

import argparse
import json
import os
import pty
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

KEY_GOAL_MS = 1.0
OUTPUT_GOAL_RATIO = 1.2


def _spawn_on_pty(argv, env=None, rows=40, cols=120):
    """argv on the slave of a new pty (its controlling terminal); returns (pid, master fd)."""
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], argv, env or os.environ)
        finally:
            os._exit(127)
    import fcntl
    import struct
    import termios
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, master


def _read_until(master, want, timeout=10.0):
    """Reads from master until `want` (bytes) has been seen; returns what was read."""
    got = b""
    end = time.monotonic() + timeout
    while want not in got:
        left = end - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"terminal: no {want!r} after {timeout} s (got {got[-200:]!r})")
        r, _, _ = select.select([master], [], [], left)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    return got


def _finish(pid, master):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    os.close(master)


def keystrokes(prefix, keys):
    """Per-key echo latency (ms) of `stty raw -echo; cat` started with `prefix`."""
    argv = prefix + ["sh", "-c", "stty raw -echo; echo READY; exec cat"]
    pid, master = _spawn_on_pty(argv)
    try:
        _read_until(master, b"READY")
        time.sleep(0.2)
        lat = []
        for i in range(keys):
            key = bytes([ord("a") + i % 26])
            t0 = time.perf_counter()
            os.write(master, key)
            _read_until(master, key, 5.0)
            lat.append((time.perf_counter() - t0) * 1000)
        return lat
    finally:
        _finish(pid, master)


def output(prefix, path):
    """Seconds until `cat path` has ended with all its output read from the terminal."""
    argv = prefix + ["sh", "-c", f"echo START; cat '{path}'; echo; echo DONE-MARK"]
    pid, master = _spawn_on_pty(argv)
    try:
        _read_until(master, b"START")
        t0 = time.perf_counter()
        got = 0
        tail = b""
        while b"DONE-MARK" not in tail:
            r, _, _ = select.select([master], [], [], 60)
            if not r:
                raise RuntimeError("terminal: output stalled for 60 s")
            chunk = os.read(master, 1 << 16)
            if not chunk:
                break
            got += len(chunk)
            tail = (tail + chunk)[-64:]
        return time.perf_counter() - t0, got
    finally:
        _finish(pid, master)


def make_text_file(path, mib):
    line = ("vos terminal throughput line " * 3)[:79] + "\n"
    with open(path, "w") as f:
        block = line * 1024
        for _ in range(mib * (1 << 20) // len(block)):
            f.write(block)


def measure(vos, keys=2000, mib=100, reps=3, tmp=None):
    own_tmp = tmp is None
    tmp = tmp or tempfile.mkdtemp(prefix="vos-bench-terminal.")
    env_prefix = [vos, "run", "--"]
    try:
        text = os.path.join(tmp, "text.txt")
        make_text_file(text, mib)
        bare_keys, vos_keys = [], []
        bare_out, vos_out = [], []
        for rep in range(reps):
            print(f"bench: terminal, rep {rep + 1}/{reps}", flush=True)
            bare_keys += keystrokes([], keys // reps)
            vos_keys += keystrokes(env_prefix, keys // reps)
            bare_out.append(output([], text)[0])
            vos_out.append(output(env_prefix, text)[0])
        q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1]
        s = {
            "keys": len(bare_keys),
            "bare_key_median_ms": statistics.median(bare_keys),
            "vos_key_median_ms": statistics.median(vos_keys),
            "bare_key_p99_ms": q(bare_keys, 99),
            "vos_key_p99_ms": q(vos_keys, 99),
            "output_mib": mib,
            "bare_output_s": statistics.median(bare_out),
            "vos_output_s": statistics.median(vos_out),
        }
        s["key_added_ms"] = s["vos_key_median_ms"] - s["bare_key_median_ms"]
        s["output_ratio"] = s["vos_output_s"] / s["bare_output_s"]
        s["key_goal_met"] = s["key_added_ms"] < KEY_GOAL_MS
        s["output_goal_met"] = s["output_ratio"] < OUTPUT_GOAL_RATIO
        return {"summary": s, "bare_output_s": bare_out, "vos_output_s": vos_out}
    finally:
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def render(s):
    return "\n".join([
        "terminal: a program on a vos pty (vos run from a terminal) vs on a bare pty",
        f"  keystroke echo  median {s['vos_key_median_ms']:.3f} ms vs bare "
        f"{s['bare_key_median_ms']:.3f} ms -> added {s['key_added_ms']:+.3f} ms "
        f"(goal < {KEY_GOAL_MS:.0f} ms: {'met' if s['key_goal_met'] else 'NOT met'}); "
        f"p99 {s['vos_key_p99_ms']:.3f} vs {s['bare_key_p99_ms']:.3f} ms; {s['keys']} keys",
        f"  cat {s['output_mib']} MiB     {s['vos_output_s']:.2f} s vs bare "
        f"{s['bare_output_s']:.2f} s -> {s['output_ratio']:.2f}x "
        f"(goal < {OUTPUT_GOAL_RATIO}x: {'met' if s['output_goal_met'] else 'NOT met'})",
    ])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vos", default=os.environ.get("VOS", "vos"))
    p.add_argument("--keys", type=int, default=2000)
    p.add_argument("--mib", type=int, default=100)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", default="bench-terminal.json", help="where to write the results")
    a = p.parse_args()
    vos = shutil.which(a.vos)
    if vos is None:
        sys.exit(f"bench: vos not found: {a.vos!r}")
    os.environ.setdefault("VOS_RUN_DIR", tempfile.mkdtemp(prefix="vos-bench-run."))
    doc = measure(os.path.abspath(vos), a.keys, a.mib, a.reps)
    print(render(doc["summary"]))
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"bench: wrote {a.json}")


if __name__ == "__main__":
    main()
