#!/usr/bin/env python3
"""End-to-end benchmark of vos: launch overhead, checkpoint, restore.

Every vos number is printed next to a baseline measured in the same run on the
same machine (disk write with dd, page-cache read of the image, a bare process
touching the same memory), so ratios stay meaningful on a noisy machine.
Every restored program is checked word by word; a wrong result is flagged in
the table and makes the exit status non-zero.

Exit status: 0 all fine, 1 a step failed (the failing command and its stderr
are printed), 2 measurements completed but some result was WRONG.

Standard library only. See bench/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import felt
import terminal
import tree
import overhead
import speed

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MEM_PROGRAM = os.path.join(SCRIPT_DIR, "..", "build", "bench", "bench_mem_program")
DEFAULT_CPU_PROGRAM = os.path.join(SCRIPT_DIR, "..", "build", "bench", "bench_cpu_program")
DEFAULT_FRESH_READ_PROGRAM = os.path.join(SCRIPT_DIR, "..", "build", "bench", "bench_fresh_read")
DEFAULT_MICRO_PROGRAM = os.path.join(SCRIPT_DIR, "..", "build", "bench", "bench_micro_calls")
PARTS = ("launch", "micro", "cpu", "sizes", "incremental", "lazy", "felt", "tree", "terminal")
DEFAULT_PARTS = ("launch", "micro", "cpu", "sizes")
LAUNCH_GOAL_MS = 2.0    # the speed issue: `vos run` start-up over bare
DEFAULT_JSON_OUT = os.path.join(SCRIPT_DIR, "results", "latest.json")
MIB = 1 << 20
NUMBER = (int, float)
POLL_S = 0.001          # ready-file poll interval; small next to what we measure


def wait_exit(proc, timeout):
    """Wait for proc to end, at most timeout seconds; False if it did not.

    Not Popen.wait(timeout): with a timeout it polls, sleeping 1, 2, 4, ... ms
    in between, so every duration it measures was rounded up to the next poll
    (1, 3, 7 ms: a /bin/true at 0.8 ms read 1.4 ms, `vos run` at 2.3 ms read
    3.6 ms). Waiting on a pidfd wakes as the process ends."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        ended, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not ended:
        return False
    proc.wait()
    return True


class Terminated(Exception):
    """SIGTERM arrived; unwinds like Ctrl-C so cleanup and the JSON happen."""


def on_sigterm(*_):
    raise Terminated()


class StepError(Exception):
    """A command the benchmark depends on failed; aborts the run."""

    def __init__(self, what, cmd=None, rc=None, stderr=""):
        self.what, self.cmd, self.rc, self.stderr = what, cmd, rc, stderr
        super().__init__(what)

    def describe(self):
        lines = [f"bench: step failed: {self.what}"]
        if self.cmd:
            lines.append("  command: " + " ".join(self.cmd))
        if self.rc is not None:
            lines.append(f"  exit status: {self.rc}")
        if self.stderr.strip():
            lines.append("  stderr:")
            lines += ["    " + line for line in self.stderr.strip().splitlines()[-40:]]
        return "\n".join(lines)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


def read_text(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def parse_kv(text):
    """Parse mem_program's "key=value" lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def touch_ms_of(ready):
    """mem_program's own measure of filling its memory (None if absent)."""
    value = parse_kv(read_text(ready)).get("touch_ms")
    return float(value) if value else None


def pid_alive(pid):
    """True if pid exists and is not a zombie (a zombie no longer runs)."""
    stat = read_text(f"/proc/{pid}/stat")
    if not stat:
        return False
    # The state field follows the parenthesised command name.
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_and_wait(pid, timeout=10.0):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def wait_for_file(path, timeout, still_alive=lambda: True):
    """Wait until path exists; returns seconds waited or None on timeout or
    when still_alive() says the producer died."""
    start = time.perf_counter()
    while not os.path.exists(path):
        if time.perf_counter() - start > timeout or not still_alive():
            return None
        time.sleep(POLL_S)
    return time.perf_counter() - start


def image_files(path):
    """Regular files making up an image (a single file or a directory tree)."""
    if os.path.isfile(path):
        return [path]
    found = []
    for root, _dirs, files in os.walk(path):
        found += [os.path.join(root, f) for f in files
                  if os.path.isfile(os.path.join(root, f))]
    return sorted(found)


def usage_bytes(path):
    """(apparent bytes, allocated bytes on disk) of a file or tree."""
    apparent = allocated = 0
    for f in image_files(path):
        st = os.stat(f)
        apparent += st.st_size
        allocated += st.st_blocks * 512
    return apparent, allocated


# --------------------------------------------------------------------------
# The session: tool paths, temp dir, and everything that must be cleaned up
# --------------------------------------------------------------------------

class Session:
    def __init__(self, args):
        self.vos = args.vos
        self.mem_program = args.mem_program
        self.fresh_read_program = args.fresh_read_program
        self.keep = args.keep
        self.codecs = args.codecs
        self.base_timeout = args.timeout
        self.tmp = tempfile.mkdtemp(prefix="vos-bench-", dir=args.tmpdir)
        self.logs = os.path.join(self.tmp, "logs")
        os.makedirs(self.logs)
        self.names = set()       # names given to `vos run`, killed at the end
        self.children = []       # our own Popen children (bare mem_program)
        self.n_cmd = 0

    def timeout_for(self, size_mib):
        """Generous per-step timeout: base + 60 s per GiB."""
        return self.base_timeout + 60.0 * size_mib / 1024

    def run(self, cmd, what, timeout, check=True, discard_stdout=False):
        """Run cmd, return (wall ms, stdout, stderr, rc).

        Output goes to files, not pipes: a detached program that inherits a
        pipe would keep it open and we would wait for EOF forever."""
        self.n_cmd += 1
        stem = os.path.join(self.logs, f"{self.n_cmd:04d}")
        with open(stem + ".out", "w+") as out, open(stem + ".err", "w+") as err:
            start = time.perf_counter()
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=err,
                                        stdout=subprocess.DEVNULL if discard_stdout else out)
            except OSError as e:
                raise StepError(f"{what}: cannot execute: {e}", cmd)
            if not wait_exit(proc, timeout):
                proc.kill()
                proc.wait()
                err.seek(0)
                raise StepError(f"{what}: timed out after {timeout:.0f} s", cmd,
                                None, err.read())
            ms = (time.perf_counter() - start) * 1e3
            rc = proc.returncode
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if check and rc != 0:
            raise StepError(what, cmd, rc, stderr)
        return ms, stdout, stderr, rc

    def vos_json(self, args, what, timeout, required=None):
        """Run `vos ARGS` expecting one JSON value on stdout; `required` maps
        keys that must be present to their accepted types."""
        required = required or {}
        cmd = [self.vos] + args
        ms, stdout, stderr, _ = self.run(cmd, what, timeout)
        try:
            value = json.loads(stdout)
        except ValueError:
            raise StepError(f"{what}: stdout is not JSON: {stdout[:300]!r}", cmd, 0, stderr)
        missing = [k for k in required if not isinstance(value, dict) or k not in value]
        if missing:
            raise StepError(f"{what}: JSON lacks {missing}: {stdout[:300]!r}", cmd, 0, stderr)
        for key, want in required.items():
            if not isinstance(value[key], want) or isinstance(value[key], bool):
                kind = "a number" if want is NUMBER else want.__name__
                raise StepError(f"{what}: JSON field {key!r} should be {kind}, got "
                                f"{value[key]!r:.100}", cmd, 0, stderr)
        return ms, value

    def vos_ps(self, timeout=30.0):
        _, value = self.vos_json(["ps", "--json"], "vos ps --json", timeout)
        if not isinstance(value, list):
            raise StepError(f"vos ps --json: expected a JSON array, got {value!r:.200}",
                            [self.vos, "ps", "--json"])
        return [e for e in value if isinstance(e, dict)]

    def find_pid(self, name):
        """Host pid of the live program vos knows as name, or None."""
        for entry in self.vos_ps():
            pid = entry.get("pid")
            if entry.get("name") == name and isinstance(pid, int) and pid_alive(pid):
                return pid
        return None

    def cleanup(self):
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.names:
            try:
                for entry in self.vos_ps():
                    if entry.get("name") in self.names and isinstance(entry.get("pid"), int):
                        # Every process of a tree: its first one's end leaves the others
                        # running (seen: a failed step left ten mem_programs that skewed the
                        # runs after it).
                        for p in entry.get("processes", []):
                            if isinstance(p.get("host_pid"), int) and p["host_pid"] != entry["pid"]:
                                kill_and_wait(p["host_pid"])
                        kill_and_wait(entry["pid"])
            except StepError as e:
                print("bench: warning: cleanup could not list vos programs; "
                      "some may still run\n" + e.describe(), file=sys.stderr)
        if self.keep:
            print(f"bench: kept images and logs in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------

def measure_launch(s, reps):
    """`vos run -- /bin/true` vs bare /bin/true, interleaved so slow drift of
    the machine hits both alike."""
    bare, vos = [], []
    load = os.getloadavg()[0]
    for _ in range(reps):
        bare.append(s.run(["/bin/true"], "bare /bin/true", 30)[0])
        vos.append(s.run([s.vos, "run", "--", "/bin/true"], "vos run -- /bin/true", 30)[0])
    # `vos run` without --detach must pass the exit status through.
    _, _, _, rc = s.run([s.vos, "run", "--", "/bin/sh", "-c", "exit 7"],
                        "vos run -- sh -c 'exit 7'", 30, check=False)
    result = {"reps": reps, "bare_ms": bare, "vos_ms": vos,
              "bare_median_ms": median(bare), "vos_median_ms": median(vos),
              "exit_status_passed": rc == 7, "exit_status_seen": rc}
    result["overhead_ms"] = result["vos_median_ms"] - result["bare_median_ms"]
    # On a shared machine the median carries other jobs' scheduling delays; the
    # first quartile shows what the same runs cost when they were not held up.
    result["bare_p25_ms"], result["vos_p25_ms"] = quartile1(bare), quartile1(vos)
    result["overhead_p25_ms"] = result["vos_p25_ms"] - result["bare_p25_ms"]
    result["goal_overhead_ms"] = LAUNCH_GOAL_MS
    result["loadavg_1min_before"] = load
    return result


def quartile1(xs):
    return statistics.quantiles(xs, n=4)[0] if len(xs) >= 2 else xs[0]


def start_bare(s, size, ready):
    """Start mem_program directly; return (ms until ready, touch_ms it reported)."""
    err = open(os.path.join(s.logs, f"bare-{size}.err"), "w+")
    cmd = [s.mem_program, str(size), ready]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err)
    s.children.append(proc)
    waited = wait_for_file(ready, s.timeout_for(size), lambda: proc.poll() is None)
    ms = (time.perf_counter() - start) * 1e3
    try:
        if waited is None:
            err.seek(0)
            raise StepError("bare mem_program never became ready", cmd, proc.poll(), err.read())
        return ms, touch_ms_of(ready)
    finally:
        proc.kill()
        proc.wait()
        s.children.remove(proc)
        err.close()


def measure_dd(s, size):
    """Disk write baseline: SIZE MiB to the filesystem the images go to,
    flushed to the device like a durable image would be. The file stays until
    remove_dd(): freeing GiBs just before a checkpoint makes this VM hand the
    memory back to its host while the checkpoint runs, which stalls the program
    for 100-370 ms at 4 GiB (README)."""
    target = os.path.join(s.tmp, "dd.bin")
    return s.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size}",
                  "conv=fdatasync"], "dd baseline", s.timeout_for(size))[0]


def remove_dd(s):
    target = os.path.join(s.tmp, "dd.bin")
    if os.path.exists(target):
        os.remove(target)


def measure_cache_read(s, image, size):
    """Page-cache read baseline: cat the image once to warm the cache, then
    time a second cat."""
    files = image_files(image)
    if not files:
        raise StepError(f"image {image} contains no files")
    cmd = ["cat"] + files
    timeout = s.timeout_for(size)
    s.run(cmd, "warm page cache", timeout, discard_stdout=True)
    return s.run(cmd, "page-cache read baseline", timeout, discard_stdout=True)[0]


def measure_fresh_read(s, image, size, uffd_copy=False):
    """Fresh-memory baseline: the image's bytes (already cached) put into new anonymous memory
    on one thread per CPU by fresh_read.c, read (populate, then pread) or, with uffd_copy, filled
    with UFFDIO_COPY as vos fills 4 KiB pages. None when that program is missing."""
    if not os.path.exists(s.fresh_read_program):
        return None
    flag = ["--uffd-copy"] if uffd_copy else []
    what = "UFFDIO_COPY floor baseline" if uffd_copy else "fresh-memory read baseline"
    out = s.run([s.fresh_read_program] + flag + image_files(image), what,
                s.timeout_for(size))[1]
    ms = parse_kv(out).get("ms")
    return float(ms) if ms else None


def verify(s, pid, ready, size):
    """Ask mem_program (SIGUSR1) to check all its memory.
    Returns {"status": "OK" | "BAD <offset>" | "TIMEOUT" | "GONE", "stall_ms",
    "verify_ms" (the program's own time for the check), "dirty_passes",
    "wall_ms" (signal to verify file seen, by the runner's clock)}."""
    path = ready + ".verify"
    if os.path.exists(path):
        os.remove(path)
    none = {"stall_ms": None, "verify_ms": None, "dirty_passes": None, "wall_ms": None}
    if pid is None or not pid_alive(pid):
        return {"status": "GONE", **none}
    os.kill(pid, signal.SIGUSR1)
    waited = wait_for_file(path, s.timeout_for(size), lambda: pid_alive(pid))
    if waited is None:
        return {"status": "TIMEOUT" if pid_alive(pid) else "GONE", **none}
    text = read_text(path)
    lines = text.splitlines()
    kv = parse_kv(text)

    def num(key, kind=float):
        return kind(kv[key]) if kv.get(key) else None
    return {"status": lines[0].strip() if lines else "EMPTY",
            "stall_ms": num("stall_ms"), "verify_ms": num("verify_ms"),
            "dirty_passes": num("dirty_passes", int), "wall_ms": waited * 1e3}


def checkpoint(s, name, ckpt_dir, size, kill, compress=None, extra=()):
    """`vos checkpoint NAME --dir D --json [--kill] [--compress=C] [EXTRA]`;
    returns its facts."""
    os.makedirs(ckpt_dir)
    args = ["checkpoint", name, "--dir", ckpt_dir, "--json"] + (["--kill"] if kill else [])
    args += [f"--compress={compress}"] if compress else []
    args += list(extra)
    ms, info = s.vos_json(args, "vos " + " ".join(args), s.timeout_for(size),
                          required={"image": str, "pause_ms": NUMBER, "total_ms": NUMBER,
                                    "bytes": int})
    image = os.path.abspath(info["image"])
    if not os.path.exists(image):
        raise StepError(f"checkpoint reported image {image}, which does not exist",
                        [s.vos] + args)
    if not image.startswith(os.path.abspath(ckpt_dir) + os.sep) and image != ckpt_dir:
        print(f"bench: warning: image {image} is outside --dir {ckpt_dir}; "
              "it will not be cleaned up", file=sys.stderr)
    apparent, on_disk = usage_bytes(image)
    return {"wall_ms": ms, "image": image, "pause_ms": info["pause_ms"],
            "total_ms": info["total_ms"], "reported_bytes": info["bytes"],
            "apparent_bytes": apparent, "disk_bytes": on_disk,
            "dir_disk_bytes": usage_bytes(ckpt_dir)[1],
            "pages_logical_bytes": info.get("pages_logical_bytes"),
            "pages_stored_bytes": info.get("pages_stored_bytes"),
            # Incremental images (absent otherwise).
            "pages": info.get("pages"), "pages_inherited": info.get("pages_inherited"),
            "parent": info.get("parent"), "note": info.get("note"),
            "phases": info.get("phases"), "background_cpu": info.get("background_cpu"),
            "stops_ms": info.get("stops_ms")}


def start_under_vos(s, name, size, ready, extra=()):
    """`vos run --name NAME --detach -- mem_program SIZE READY [EXTRA]`; ms
    until it is ready."""
    cmd = [s.vos, "run", "--name", name, "--detach", "--", s.mem_program, str(size), ready]
    cmd += list(extra)
    s.names.add(name)
    start = time.perf_counter()
    s.run(cmd, "vos run --detach mem_program", s.timeout_for(size))
    if wait_for_file(ready, s.timeout_for(size), listed_every(s, name, 1.0)) is None:
        raise StepError(f"program started by vos never wrote {ready} "
                        "(it exited, or timed out)", cmd)
    return (time.perf_counter() - start) * 1e3


def listed_every(s, name, period):
    """A still_alive() for wait_for_file that asks `vos ps` at most once per
    period, so a program that died early fails fast without us polling vos
    in a tight loop."""
    last = [time.monotonic()]

    def alive():
        if time.monotonic() - last[0] < period:
            return True
        last[0] = time.monotonic()
        return s.find_pid(name) is not None
    return alive


def require_dead(pid, name, timeout=5.0):
    """After `checkpoint --kill` the original must be gone; otherwise the
    "restored" program we verify next could simply be the original."""
    deadline = time.monotonic() + timeout
    while pid is not None and pid_alive(pid):
        if time.monotonic() > deadline:
            raise StepError(f"`vos checkpoint {name} --kill` returned but pid {pid} still runs")
        time.sleep(0.01)


def restore(s, image, size, extra=()):
    """`vos restore IMAGE --detach --json [EXTRA]`; "pid" is the host pid if
    vos printed one."""
    args = ["restore", image, "--detach", "--json"] + list(extra)
    ms, info = s.vos_json(args, "vos " + " ".join(args), s.timeout_for(size),
                          required={"restore_ms": NUMBER})
    pid = info.get("pid")
    return {"wall_ms": ms, "restore_ms": info["restore_ms"],
            "pid": pid if isinstance(pid, int) and not isinstance(pid, bool) else None}


def measure_rep(s, size, rep):
    """One full cycle for one size. Each piece is paired with its baseline."""
    tag = f"{size}-{rep}"
    name = f"vosbench-{os.getpid()}-{tag}"
    r = {"rep": rep}

    r["bare_ready_ms"], r["bare_touch_ms"] = start_bare(
        s, size, os.path.join(s.tmp, f"bare-ready-{tag}"))
    r["dd_ms"] = measure_dd(s, size)

    ready = os.path.join(s.tmp, f"ready-{tag}")
    r["vos_ready_ms"] = start_under_vos(s, name, size, ready)
    r["touch_ms"] = touch_ms_of(ready)

    # Checkpoint and leave running: the running program must be unharmed,
    # and its own clock shows how long it was really held still.
    live_dir = os.path.join(s.tmp, f"img-{tag}-live")
    r["ckpt"] = checkpoint(s, name, live_dir, size, kill=False)
    r["verify_after_ckpt"] = verify(s, s.find_pid(name), ready, size)
    remove_dd(s)
    if not s.keep:
        shutil.rmtree(live_dir, ignore_errors=True)

    # Checkpoint with --kill, then restore from that image.
    kill_dir = os.path.join(s.tmp, f"img-{tag}-kill")
    original = s.find_pid(name)
    r["ckpt_kill"] = checkpoint(s, name, kill_dir, size, kill=True)
    require_dead(original, name)
    image = r["ckpt_kill"]["image"]
    r["read_ms"] = measure_cache_read(s, image, size)
    r["fresh_read_ms"] = measure_fresh_read(s, image, size)
    r["uffd_floor_ms"] = measure_fresh_read(s, image, size, uffd_copy=True)
    r["restore"] = restore(s, image, size)
    pid = s.find_pid(name)
    r["verify_after_restore"] = verify(s, pid, ready, size)
    if not s.keep:
        shutil.rmtree(kill_dir, ignore_errors=True)

    # The same with each codec, on the restored program: a live checkpoint (timed like the
    # plain one above), then --kill and a restore from the compressed image.
    r["codecs"] = {}
    for codec in s.codecs:
        c = r["codecs"][codec] = {}
        live = os.path.join(s.tmp, f"img-{tag}-{codec}-live")
        c["ckpt"] = checkpoint(s, name, live, size, kill=False, compress=codec)
        c["verify_after_ckpt"] = verify(s, s.find_pid(name), ready, size)
        killed = os.path.join(s.tmp, f"img-{tag}-{codec}-kill")
        original = s.find_pid(name)
        c["ckpt_kill"] = checkpoint(s, name, killed, size, kill=True, compress=codec)
        require_dead(original, name)
        c["restore"] = restore(s, c["ckpt_kill"]["image"], size)
        pid = s.find_pid(name)
        c["verify_after_restore"] = verify(s, pid, ready, size)
        c["ckpt_over_dd"] = ratio(c["ckpt"]["wall_ms"], r["dd_ms"])
        c["ok"] = (c["verify_after_ckpt"]["status"] == "OK"
                   and c["verify_after_restore"]["status"] == "OK")
        if not s.keep:
            shutil.rmtree(live, ignore_errors=True)
            shutil.rmtree(killed, ignore_errors=True)
    if pid is not None:
        kill_and_wait(pid)

    r["ckpt_over_dd"] = ratio(r["ckpt"]["wall_ms"], r["dd_ms"])
    r["restore_over_read"] = ratio(r["restore"]["wall_ms"], r["read_ms"])
    r["restore_over_fresh_read"] = ratio(r["restore"]["wall_ms"], r["fresh_read_ms"])
    r["restore_over_uffd_floor"] = ratio(r["restore"]["wall_ms"], r["uffd_floor_ms"])
    r["uffd_floor_over_read"] = ratio(r["uffd_floor_ms"], r["read_ms"])
    r["ok"] = (r["verify_after_ckpt"]["status"] == "OK"
               and r["verify_after_restore"]["status"] == "OK"
               and all(c["ok"] for c in r["codecs"].values()))
    return r


def summarize(size, reps):
    """Medians over repetitions; ratios are medians of per-rep ratios (each
    pair was measured side by side)."""
    def med(f):
        return median([f(r) for r in reps])
    bad_ckpt = sum(r["verify_after_ckpt"]["status"] != "OK" for r in reps)
    bad_rst = sum(r["verify_after_restore"]["status"] != "OK" for r in reps)
    return {
        "size_mib": size,
        "launch_overhead_ms": med(lambda r: r["vos_ready_ms"] - r["bare_ready_ms"]),
        "bare_ready_ms": med(lambda r: r["bare_ready_ms"]),
        "ckpt_ms": med(lambda r: r["ckpt"]["wall_ms"]),
        "ckpt_tool_total_ms": med(lambda r: r["ckpt"]["total_ms"]),
        "pause_ms": med(lambda r: r["ckpt"]["pause_ms"]),
        "observed_stall_ms": med(lambda r: r["verify_after_ckpt"]["stall_ms"]),
        "image_disk_bytes": med(lambda r: r["ckpt"]["disk_bytes"]),
        "image_over_memory": med(lambda r: r["ckpt"]["disk_bytes"] / (size * MIB)),
        "dd_ms": med(lambda r: r["dd_ms"]),
        "ckpt_over_dd": med(lambda r: r["ckpt_over_dd"]),
        "restore_ms": med(lambda r: r["restore"]["wall_ms"]),
        "restore_tool_ms": med(lambda r: r["restore"]["restore_ms"]),
        "read_ms": med(lambda r: r["read_ms"]),
        "fresh_read_ms": med(lambda r: r["fresh_read_ms"]),
        "restore_over_fresh_read": med(lambda r: r["restore_over_fresh_read"]),
        "uffd_floor_ms": med(lambda r: r["uffd_floor_ms"]),
        "restore_over_uffd_floor": med(lambda r: r["restore_over_uffd_floor"]),
        "uffd_floor_over_read": med(lambda r: r["uffd_floor_over_read"]),
        "restore_over_read": med(lambda r: r["restore_over_read"]),
        "statuses_after_ckpt": [r["verify_after_ckpt"]["status"] for r in reps],
        "statuses_after_restore": [r["verify_after_restore"]["status"] for r in reps],
        "bad_after_ckpt": bad_ckpt,
        "bad_after_restore": bad_rst,
        "ok": bad_ckpt == 0 and bad_rst == 0 and all(r["ok"] for r in reps),
        "codecs": {codec: summarize_codec(codec, size, reps) for codec in reps[0]["codecs"]},
    }


def summarize_codec(codec, size, reps):
    """Medians of one codec's runs, in the same units as the plain row."""
    cs = [r["codecs"][codec] for r in reps]

    def med(f):
        return median([f(c) for c in cs])
    return {
        "ckpt_ms": med(lambda c: c["ckpt"]["wall_ms"]),
        "ckpt_tool_total_ms": med(lambda c: c["ckpt"]["total_ms"]),
        "pause_ms": med(lambda c: c["ckpt"]["pause_ms"]),
        "image_disk_bytes": med(lambda c: c["ckpt"]["disk_bytes"]),
        "image_over_memory": med(lambda c: c["ckpt"]["disk_bytes"] / (size * MIB)),
        "pages_stored_over_logical": med(lambda c: ratio(c["ckpt"]["pages_stored_bytes"],
                                                         c["ckpt"]["pages_logical_bytes"])),
        "ckpt_over_dd": med(lambda c: c["ckpt_over_dd"]),
        "restore_ms": med(lambda c: c["restore"]["wall_ms"]),
        "ok": all(c["ok"] for c in cs),
    }


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def verify_cell(row, n):
    if row["ok"]:
        return "OK"
    parts = []
    if row["bad_after_ckpt"]:
        parts.append(f"ckpt {row['bad_after_ckpt']}/{n}")
    if row["bad_after_restore"]:
        parts.append(f"restore {row['bad_after_restore']}/{n}")
    return "**WRONG** " + ", ".join(parts)


COLUMNS = ["MiB", "launch+ms", "touch ms", "ckpt ms", "pause ms", "seen ms",
           "img MiB", "dd ms", "ckpt/dd", "rst ms", "read ms", "rst/read", "fresh ms",
           "rst/fresh", "floor ms", "floor/read", "rst/floor", "verify"]


def table_rows(rows, n):
    for row in rows:
        yield [str(row["size_mib"]), fmt(row["launch_overhead_ms"]), fmt(row["bare_ready_ms"]),
               fmt(row["ckpt_ms"]), fmt(row["pause_ms"]), fmt(row["observed_stall_ms"]),
               fmt(None if row["image_disk_bytes"] is None else row["image_disk_bytes"] / MIB),
               fmt(row["dd_ms"]), fmt(row["ckpt_over_dd"], 2), fmt(row["restore_ms"]),
               fmt(row["read_ms"]), fmt(row["restore_over_read"], 2), fmt(row["fresh_read_ms"]),
               fmt(row["restore_over_fresh_read"], 2), fmt(row["uffd_floor_ms"]),
               fmt(row["uffd_floor_over_read"], 2), fmt(row["restore_over_uffd_floor"], 2),
               verify_cell(row, n)]


def render_table(rows, n):
    body = [COLUMNS] + list(table_rows(rows, n))
    widths = [max(len(line[i]) for line in body) for i in range(len(COLUMNS))]
    lines = []
    for k, line in enumerate(body):
        cells = [c.rjust(w) for c, w in zip(line[:-1], widths)] + [line[-1]]
        lines.append("  ".join(cells))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


CODEC_COLUMNS = ["MiB", "compress", "ckpt ms", "pause ms", "img MiB", "img/mem", "pages z/raw",
                 "dd ms", "ckpt/dd", "rst ms", "verify"]


def codec_rows(rows):
    """The plain checkpoint of each size, then each codec's, beside the same dd baseline."""
    for row in rows:
        yield [str(row["size_mib"]), "none", fmt(row["ckpt_ms"]), fmt(row["pause_ms"]),
               fmt(row["image_disk_bytes"] / MIB), fmt(row["image_over_memory"], 3), "1.000",
               fmt(row["dd_ms"]), fmt(row["ckpt_over_dd"], 2), fmt(row["restore_ms"]),
               "OK" if row["bad_after_ckpt"] + row["bad_after_restore"] == 0 else "**WRONG**"]
        for codec, c in row["codecs"].items():
            yield [str(row["size_mib"]), codec, fmt(c["ckpt_ms"]), fmt(c["pause_ms"]),
                   fmt(c["image_disk_bytes"] / MIB), fmt(c["image_over_memory"], 3),
                   fmt(c["pages_stored_over_logical"], 3),
                   fmt(row["dd_ms"]), fmt(c["ckpt_over_dd"], 2), fmt(c["restore_ms"]),
                   "OK" if c["ok"] else "**WRONG**"]


def render_codec_table(rows):
    return speed.render_rows(CODEC_COLUMNS, list(codec_rows(rows)))


def print_report(doc, reps):
    print()
    if "launch" in doc:
        print_launch(doc["launch"])
    if "micro" in doc:
        print(overhead.render_micro(doc["micro"]) + "\n")
    if "cpu" in doc:
        print(overhead.render_cpu(doc["cpu"]) + "\n")
    if "sizes" in doc:
        rows = [entry["summary"] for entry in doc["sizes"]]
        print_sizes(rows, reps)
        print("\n" + overhead.render_pause(rows))
    if "incremental" in doc:
        rows = [entry["summary"] for entry in doc["incremental"]["sizes"]]
        print("\n" + speed.render_incremental(rows, reps, doc["incremental"]["note"]))
    if "lazy" in doc:
        print("\n" + speed.render_lazy([entry["summary"] for entry in doc["lazy"]], reps))
    if "felt" in doc:
        print("\n" + felt.render_felt([entry["summary"] for entry in doc["felt"]], reps))
    if "tree" in doc:
        print("\n" + tree.render_tree([entry["summary"] for entry in doc["tree"]], fmt))
    if "terminal" in doc:
        print("\n" + terminal.render(doc["terminal"]["summary"]))


def print_launch(launch):
    print(f"launch: vos run -- /bin/true  median {launch['vos_median_ms']:.2f} ms  vs  "
          f"bare /bin/true {launch['bare_median_ms']:.2f} ms  ->  "
          f"overhead {launch['overhead_ms']:+.2f} ms  ({launch['reps']} reps each)")
    print(f"        first quartiles {launch['vos_p25_ms']:.2f} vs {launch['bare_p25_ms']:.2f} ms "
          f"->  {launch['overhead_p25_ms']:+.2f} ms;  goal < {launch['goal_overhead_ms']:.0f} ms;  "
          f"load average {launch['loadavg_1min_before']:.2f} on {os.cpu_count()} cores")
    if not launch["exit_status_passed"]:
        print(f"**WRONG** `vos run -- sh -c 'exit 7'` returned {launch['exit_status_seen']}, "
              "expected 7")
    print()


def print_sizes(rows, reps):
    print(f"per size: medians of {reps} rep(s); see bench/README.md for the columns\n")
    print(render_table(rows, reps))
    if rows and rows[0]["codecs"]:
        print("\ncompression (--compress): live checkpoint time and image size (img/mem: "
              "image on disk / program memory; pages z/raw: page bytes stored / page bytes "
              "captured); rst = restore from a --kill image of that codec\n")
        print(render_codec_table(rows))
    wrong = [r for r in rows if not r["ok"]]
    if wrong:
        print("\n!!! WRONG RESULTS: memory did not verify after checkpoint or restore; "
              "the flagged rows time a broken checkpoint/restore.")
        for r in wrong:
            print(f"!!!   {r['size_mib']} MiB: after checkpoint {r['statuses_after_ckpt']}, "
                  f"after restore {r['statuses_after_restore']}")


def machine_facts(tmp):
    cpu = next((line.split(":", 1)[1].strip() for line in read_text("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next((int(line.split()[1]) for line in read_text("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), 0)
    return {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "mem_total_mib": mem_kib // 1024,
        "transparent_hugepage": read_text(
            "/sys/kernel/mm/transparent_hugepage/enabled").strip(),
        "image_fs": filesystem_of(tmp),
        "python": platform.python_version(),
    }


def filesystem_of(path):
    """(mount point, fs type, device) holding path: tells whether dd and the
    images hit a real disk or tmpfs."""
    best = ("", "?", "?")
    for line in read_text("/proc/self/mounts").splitlines():
        dev, mnt, fstype = line.split()[:3]
        mnt = mnt.replace("\\040", " ")
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
            best = (mnt, fstype, dev)
    return {"mount": best[0], "type": best[1], "device": best[2]}


def rounded(value):
    """Floats to 3 decimals: sub-microsecond digits are noise."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def write_json(path, doc):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rounded(doc), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="End-to-end benchmark of vos.")
    p.add_argument("--vos", default=os.environ.get("VOS", "vos"),
                   help="vos binary (default: $VOS, else vos on PATH)")
    p.add_argument("--mem-program", default=DEFAULT_MEM_PROGRAM,
                   help="bench_mem_program binary (default: %(default)s)")
    p.add_argument("--fresh-read-program", default=DEFAULT_FRESH_READ_PROGRAM,
                   help="bench_fresh_read binary, the fresh-memory restore baseline "
                        "(default: %(default)s)")
    p.add_argument("--cpu-program", default=DEFAULT_CPU_PROGRAM,
                   help="bench_cpu_program binary (default: %(default)s)")
    p.add_argument("--micro-program", default=DEFAULT_MICRO_PROGRAM,
                   help="bench_micro_calls binary (default: %(default)s)")
    p.add_argument("--parts", default=",".join(DEFAULT_PARTS),
                   help="which figures to measure, comma separated (default: %(default)s; "
                        "also: incremental, lazy)")
    p.add_argument("--sizes", default="16,256,1024",
                   help="MiB, comma separated; up to 4096 is supported")
    p.add_argument("--quick", action="store_true", help="sizes 16,64")
    p.add_argument("--reps", type=int, default=3, help="repetitions per size")
    p.add_argument("--launch-reps", type=int, default=50,
                   help="repetitions of the /bin/true launch test")
    p.add_argument("--micro-rounds", type=int, default=5,
                   help="alternating bare/vos runs of the single-call benchmark")
    p.add_argument("--micro-min-time", default="0.1",
                   help="Google Benchmark --benchmark_min_time per case and run")
    p.add_argument("--cpu-millions", type=int, default=100,
                   help="millions of loop steps per CPU-bound run")
    p.add_argument("--cpu-reps", type=int, default=5,
                   help="alternating bare/vos runs of the CPU-bound loop")
    p.add_argument("--json-out", default=DEFAULT_JSON_OUT, help="default: %(default)s")
    p.add_argument("--tmpdir", default=None,
                   help="where images and dd files go (default: system temp dir); "
                        "its filesystem is what dd measures")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="per-step timeout in seconds, plus 60 s per GiB")
    p.add_argument("--keep", action="store_true", help="keep images and logs")
    p.add_argument("--codecs", default="lz4,zstd",
                   help="also checkpoint with --compress=CODEC for each (default: %(default)s; "
                        "'' for none)")
    p.add_argument("--dirty-mib", type=int, default=10,
                   help="part incremental: MiB rewritten between the two checkpoints "
                        "(default: %(default)s)")
    p.add_argument("--dirty-layout", choices=("spread", "block"), default="spread",
                   help="part incremental: rewrite every k-th page (spread) or one "
                        "contiguous block (default: %(default)s)")
    p.add_argument("--spinners", default="1,2",
                   help="part felt: how many threads of the program spin (busy cores), one "
                        "row each (default: %(default)s)")
    p.add_argument("--background-cpu", default="default,off",
                   help="part felt: the class of vos's threads while the program runs "
                        "(VOS_BACKGROUND_CPU: idle, batch, nice, off; 'default' is vos's own "
                        "choice), one row each, alternated (default: %(default)s)")
    p.add_argument("--trees", default="10x100,10x1",
                   help="part tree: PROCESSESxMIB, comma separated (default: %(default)s)")
    p.add_argument("--terminal-keys", type=int, default=2000,
                   help="part terminal: keystrokes timed, bare and under vos (default: %(default)s)")
    p.add_argument("--terminal-mib", type=int, default=100,
                   help="part terminal: MiB of text cat writes to the terminal (default: %(default)s)")
    p.add_argument("--tree-spin", action="store_true",
                   help="part tree: every process spins on one thread (MEM_PROGRAM_SPIN=1)")
    p.add_argument("--hugepage", action="store_true",
                   help="parts sizes, incremental, lazy: the program asks for transparent huge "
                        "pages (MADV_HUGEPAGE), as databases and JVMs do; with THP set to "
                        "'madvise' only such memory gets them, in the program and in a restore")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(x) for x in ("16,64" if args.quick else args.sizes).split(",")]
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    args.codecs = [c for c in args.codecs.split(",") if c]
    args.background_cpu = [None if c == "default" else c
                           for c in args.background_cpu.split(",") if c]
    if any(c not in (None, "idle", "batch", "nice", "off") for c in args.background_cpu):
        p.error("--background-cpu: choose from default, idle, batch, nice, off")
    try:
        args.spinners = [int(x) for x in args.spinners.split(",") if x]
    except ValueError:
        p.error(f"--spinners: expected comma-separated integers, got {args.spinners!r}")
    if (any(x <= 0 for x in args.sizes) or min(args.reps, args.launch_reps, args.micro_rounds,
                                               args.cpu_reps, args.cpu_millions) <= 0):
        p.error("sizes and repetition counts must be positive")
    if "incremental" in args.parts and not 0 < args.dirty_mib <= min(args.sizes):
        p.error("--dirty-mib must be positive and at most the smallest size")
    try:
        args.trees = [tuple(int(v) for v in t.split("x")) for t in args.trees.split(",") if t]
    except ValueError:
        p.error(f"--trees: expected PROCESSESxMIB items, got {args.trees!r}")
    args.parts = [x for x in args.parts.split(",") if x]
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown or not args.parts:
        p.error(f"--parts: unknown {unknown}; choose from {','.join(PARTS)}")
    return args


def resolve_tools(args):
    """Turn --vos/--mem-program into absolute paths or exit 1 with a hint."""
    vos = shutil.which(args.vos)
    if vos is None:
        sys.exit(f"bench: vos not found: {args.vos!r} (build it, put it on PATH, "
                 "or pass --vos / set $VOS)")
    args.vos = os.path.abspath(vos)
    for part, attr, target in (("sizes", "mem_program", "bench_mem_program"),
                               ("incremental", "mem_program", "bench_mem_program"),
                               ("lazy", "mem_program", "bench_mem_program"),
                               ("tree", "mem_program", "bench_mem_program"),
                               ("cpu", "cpu_program", "bench_cpu_program"),
                               ("micro", "micro_program", "bench_micro_calls")):
        path = os.path.abspath(getattr(args, attr))
        setattr(args, attr, path)
        if part in args.parts and not os.access(path, os.X_OK):
            sys.exit(f"bench: {target} not found at {path} (build it with `cmake --build build "
                     f"--target {target}`, pass --{attr.replace('_', '-')}, or leave "
                     f"'{part}' out of --parts)")


def measure_incremental(s, args):
    """Part incremental, every size; precopy rows only if vos has --precopy."""
    precopy = speed.precopy_supported(s)
    note = None if precopy else ("precopy: skipped, `vos checkpoint --help` does not mention "
                                 "--precopy")
    if note:
        print("bench: " + note, flush=True)
    out = {"precopy_measured": precopy, "note": note, "sizes": []}
    for size in args.sizes:
        reps = []
        for rep in range(args.reps):
            print(f"bench: incremental, {size} MiB, rep {rep + 1}/{args.reps}", flush=True)
            reps.append(speed.incremental_rep(s, sys.modules[__name__], size, args.dirty_mib,
                                              args.dirty_layout, rep, precopy))
        out["sizes"].append({"summary": speed.summarize_incremental(size, reps), "reps": reps})
    return out


def warn_if_low_memory(sizes):
    avail = next((int(line.split()[1]) // 1024 for line in read_text("/proc/meminfo").splitlines()
                  if line.startswith("MemAvailable:")), None)
    if avail is not None and max(sizes) * 2 > avail:
        print(f"bench: warning: {max(sizes)} MiB program plus its image in page cache may "
              f"not fit in {avail} MiB available memory; numbers will include swapping "
              "or eviction", file=sys.stderr)


def main(argv=None):
    args = parse_args(argv)
    resolve_tools(args)
    if {"sizes", "incremental", "lazy", "felt"} & set(args.parts):
        warn_if_low_memory(args.sizes)
    # SIGTERM must also reach the cleanup in `finally`.
    signal.signal(signal.SIGTERM, on_sigterm)

    if args.hugepage:
        os.environ["MEM_PROGRAM_HUGEPAGE"] = "1"  # read by mem_program, bare and under vos
    s = Session(args)
    doc = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(s.tmp),
        "config": {"vos": args.vos, "parts": args.parts, "mem_program": args.mem_program,
                   "cpu_program": args.cpu_program, "micro_program": args.micro_program,
                   "sizes_mib": args.sizes, "reps": args.reps, "launch_reps": args.launch_reps,
                   "micro_rounds": args.micro_rounds, "micro_min_time": args.micro_min_time,
                   "cpu_millions": args.cpu_millions, "cpu_reps": args.cpu_reps,
                   "codecs": args.codecs, "dirty_mib": args.dirty_mib,
                   "dirty_layout": args.dirty_layout, "hugepage": args.hugepage,
                   "spinners": args.spinners, "background_cpu": args.background_cpu,
                   "trees": args.trees, "tree_spin": args.tree_spin},
        "status": "running",
    }
    status = 1
    try:
        print(f"bench: vos={args.vos}  parts={','.join(args.parts)}  sizes={args.sizes} MiB  "
              f"reps={args.reps}  tmp={s.tmp}" + ("  huge pages" if args.hugepage else ""))
        if "launch" in args.parts:
            doc["launch"] = measure_launch(s, args.launch_reps)
        if "micro" in args.parts:
            print("bench: single calls, bare and under vos", flush=True)
            doc["micro"] = overhead.measure_micro(s, args.micro_program, args.micro_rounds,
                                                  args.micro_min_time, StepError)
        if "cpu" in args.parts:
            print("bench: CPU-bound loop, bare and under vos", flush=True)
            doc["cpu"] = overhead.measure_cpu(s, args.cpu_program, args.cpu_millions,
                                              args.cpu_reps, StepError)
        if "sizes" in args.parts:
            doc["sizes"] = []
            for size in args.sizes:
                # In a VM the first touch of fresh guest memory also pays for the
                # host's page faults; an untimed touch keeps that cost out of
                # whichever run would happen to come first.
                start_bare(s, size, os.path.join(s.tmp, f"warmup-ready-{size}"))
                reps = []
                for rep in range(args.reps):
                    print(f"bench: {size} MiB, rep {rep + 1}/{args.reps}", flush=True)
                    reps.append(measure_rep(s, size, rep))
                doc["sizes"].append({"summary": summarize(size, reps), "reps": reps})
        if "incremental" in args.parts:
            doc["incremental"] = measure_incremental(s, args)
        if "lazy" in args.parts:
            doc["lazy"] = []
            for size in args.sizes:
                reps = []
                for rep in range(args.reps):
                    print(f"bench: lazy restore, {size} MiB, rep {rep + 1}/{args.reps}",
                          flush=True)
                    reps.append(speed.lazy_rep(s, sys.modules[__name__], size, rep))
                doc["lazy"].append({"summary": speed.summarize_lazy(size, reps), "reps": reps})
        if "felt" in args.parts:
            doc["felt"] = []
            for size in args.sizes:
                for spinners in args.spinners:
                    # The classes alternate within each rep: the machine's noise drifts.
                    reps = {c: [] for c in args.background_cpu}
                    for rep in range(args.reps):
                        for c in args.background_cpu:
                            print(f"bench: felt pause, {size} MiB, {spinners} busy core(s), "
                                  f"vos threads {c or 'default'}, rep {rep + 1}/{args.reps}",
                                  flush=True)
                            reps[c].append(felt.felt_rep(s, sys.modules[__name__], size,
                                                         spinners, min(args.dirty_mib, size),
                                                         rep, c))
                    for c in args.background_cpu:
                        doc["felt"].append({"summary": felt.summarize_felt(size, spinners, c,
                                                                           reps[c]),
                                            "reps": reps[c]})
        if "tree" in args.parts:
            doc["tree"] = []
            for n, mib in args.trees:
                reps = []
                for rep in range(args.reps):
                    print(f"bench: process tree, {n} x {mib} MiB, rep {rep + 1}/{args.reps}",
                          flush=True)
                    reps.append(tree.tree_rep(s, sys.modules[__name__], n, mib, rep,
                                                  args.tree_spin))
                doc["tree"].append({"summary": tree.summarize_tree(n, mib, reps), "reps": reps})
        if "terminal" in args.parts:
            doc["terminal"] = terminal.measure(args.vos, args.terminal_keys, args.terminal_mib,
                                               args.reps, s.tmp)
        print_report(doc, args.reps)
        all_ok = (all(e["summary"]["ok"] for e in doc.get("sizes", []))
                  and all(e["summary"]["ok"] for e in doc.get("incremental", {}).get("sizes", []))
                  and all(e["summary"]["ok"] for e in doc.get("lazy", []))
                  and all(e["summary"]["ok"] for e in doc.get("tree", []))
                  and doc.get("launch", {}).get("exit_status_passed", True)
                  and doc.get("cpu", {}).get("same_result", True))
        doc["status"] = "ok" if all_ok else "wrong-results"
        status = 0 if all_ok else 2
    except StepError as e:
        print(e.describe(), file=sys.stderr)
        doc["status"], doc["error"] = "failed", e.describe()
    except (KeyboardInterrupt, Terminated) as e:
        print("bench: interrupted", file=sys.stderr)
        doc["status"] = "interrupted"
        status = 143 if isinstance(e, Terminated) else 130
    finally:
        s.cleanup()
        # Always written, so latest.json never shows an older run's success.
        write_json(args.json_out, doc)
        print(f"bench: results written to {args.json_out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
