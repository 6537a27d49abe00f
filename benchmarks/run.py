"""zdir's benchmarks: latency, start-up, large merged listings against the usual tools,
a million entries, many upstreams and concurrent clients, all in one run.

    python benchmarks/run.py                 # everything (the million-entry directory takes
                                             # about a minute to build, once)
    python benchmarks/run.py --only a,b,c    # a subset: a b c d e f
    python benchmarks/run.py --quick         # smaller directories, fewer runs

Test directories are built once and kept in benchmarks/.cache/ (git-ignored).
Every server (zdir nodes, nginx, an rsync daemon) is started here on loopback
and stopped at the end, by pid. nginx, rsync and rclone come from the
distribution's packages: when one is missing it is installed with apt-get if
this runs as root, and skipped with a note otherwise. Figures are medians;
ratios compare figures measured in this same run. benchmarks/README.md explains
each case and records the results.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"
PY = sys.executable
READY = re.compile(r"^(?P<name>\S+) listening on (?P<endpoint>\S+) root=")
SETTLE = 2.1  # zdir.cache.SETTLE and a margin: a younger directory is not cached yet
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
LONG = ["--upstream-timeout", "100"]  # a cold million-entry listing takes B seconds
WARM = ["--stat-ttl", "3600"]  # every timed run finds the stat listing cached
COLD = ["--cache-mb", "0"]
CASES = "abcdef"
MAX_SIZE = 4096  # bytes, of the test files (see build)


class Scale(NamedTuple):
    """How much of everything: --quick shrinks it all."""

    big: int  # entries in each directory of case (c)
    million: int  # entries in case (d)'s directory
    round_trips: int  # per side, cases (a) and (e)
    processes: int  # whole-process runs per side, case (b)
    listings: int  # timed runs per tool, case (c)
    seconds: float  # case (f)'s load


FULL = Scale(100_000, 1_000_000, 3000, 30, 7, 5.0)
QUICK = Scale(20_000, 200_000, 600, 10, 3, 2.0)

# A two-hop REQ/REP echo chain in plain pyzmq: the floor for case (a).
ECHO = """
import sys, zmq
context = zmq.Context()
rep = context.socket(zmq.REP)
rep.bind("tcp://127.0.0.1:*")
print("echo listening on", rep.getsockopt_string(zmq.LAST_ENDPOINT), "root=-", flush=True)
up = None
if len(sys.argv) > 1:
    up = context.socket(zmq.REQ)
    up.connect(sys.argv[1])
while True:
    frames = rep.recv_multipart()
    if up is not None:
        up.send_multipart(frames)
        frames = up.recv_multipart()
    rep.send_multipart(frames)
"""


# -- results -------------------------------------------------------------------------------------

class Row(NamedTuple):
    case: str
    what: str
    value: str  # the figure, with its unit
    versus: str = ""  # what it is compared with
    ratio: str = ""
    target: str = ""
    verdict: str = ""


class Report:
    """Rows for the table, notes for below it, and the raw figures for results.json."""

    def __init__(self) -> None:
        self.rows: List[Row] = []
        self.notes: List[str] = []
        self.figures: Dict[str, object] = {}

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.what}: {row.value}" + (f"  ({row.ratio} {row.versus})" if row.ratio else ""),
              flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def table(self) -> str:
        header = Row("case", "what", "median", "compared with", "ratio", "target", "")
        rows = [header, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


# -- processes -----------------------------------------------------------------------------------

def child_env() -> Dict[str, str]:
    """Children run as after a normal install: bytecode cached, no ZDIR_* from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDIR_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class Server(NamedTuple):
    proc: subprocess.Popen
    endpoint: str


class Processes:
    """Everything this run starts, stopped by pid at the end (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.started: List[subprocess.Popen] = []

    def spawn(self, cmd: Sequence[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(list(cmd), env=child_env(), stdin=subprocess.DEVNULL, **kwargs)
        self.started.append(proc)
        return proc

    def ready(self, cmd: Sequence[str]) -> Server:
        """Start a process that prints ``NAME listening on ENDPOINT root=...`` once bound."""
        proc = self.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = READY.match(line)
        if not match:
            raise RuntimeError(f"{' '.join(cmd)}: no ready line (got {line!r})")
        return Server(proc, match["endpoint"])

    def node(self, root: Path, *args: str) -> Server:
        return self.ready([PY, "-m", "zdir.server_b", "--root", str(root),
                           "--bind", "tcp://127.0.0.1:*", "--log-level", "WARNING", *args])

    def chain(self, a_root: Path, b_root: Path, *args: str, a_args: Sequence[str] = ()
              ) -> Tuple[Server, Server]:
        """B, and A in front of it: the two-hop chain every case but (e) measures."""
        b = self.node(b_root, "--name", "server_b", *args)
        a = self.node(a_root, "--name", "server_a", "--upstream", b.endpoint, *args, *a_args)
        return a, b

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)
        self.started.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT) -> None:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)  # nginx and rsyncd print nothing when ready: the port is the signal
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def timed(cmd: Sequence[str], *, shell: bool = False) -> float:
    """Wall time of one run, stdout to /dev/null."""
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.run(cmd if not shell else cmd[0], shell=shell, env=child_env(),
                              stdout=devnull, stderr=errors, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace")[-500:]
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {text}")
    return elapsed


def timed_rss(gnu_time: str, cmd: Sequence[str]) -> Tuple[float, int]:
    """Wall time and peak RSS (KiB) of one run, measured by GNU time.

    Not by wait4 from here: a child made by (v)fork starts with this process's
    high-water mark, which exec keeps, and this process holds more than a client.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        elapsed = timed([gnu_time, "-f", "%M", "-o", report.name, *cmd])
        return elapsed, int(report.read().split()[-1])


def peak_rss_kib(proc: subprocess.Popen) -> int:
    """VmHWM: the most the process has ever held resident."""
    with open(f"/proc/{proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {proc.pid}")


def rounds(sides: Dict[str, Callable[[], float]], count: int, per_round: int) -> Dict[str, float]:
    """Median of each side's samples, taken in alternating rounds so drift hits both."""
    samples: Dict[str, List[float]] = {name: [] for name in sides}
    for _ in range(max(1, count // per_round)):
        for name, sample in sides.items():
            samples[name].extend(sample() for _ in range(per_round))
    return {name: statistics.median(values) for name, values in samples.items()}


# -- test directories ------------------------------------------------------------------------------

def build(path: Path, count: int, name: Callable[[int], str]) -> Path:
    """COUNT files in PATH, built once; a marker says it is complete.

    Sizes vary (0 to 4095, sparse). Not larger: a ``grep -r`` over the checkout
    reads every file of benchmarks/.cache, and a million sparse megabytes would
    keep it busy for an hour.
    """
    marker = path.with_name(path.name + ".built")
    if marker.exists() and marker.read_text() == f"{count} files, sizes below {MAX_SIZE}":
        return path
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    print(f"  building {path.relative_to(REPO)} ({count:,} files)...", flush=True)
    for i in range(count):
        fd = os.open(path / name(i), os.O_CREAT | os.O_WRONLY, 0o644)
        if i % 7:
            os.ftruncate(fd, (i * 7919) % MAX_SIZE)
        os.close(fd)
    marker.write_text(f"{count} files, sizes below {MAX_SIZE}")
    return path


def tiny() -> Tuple[Path, Path]:
    a, b = CACHE / "tiny" / "a", CACHE / "tiny" / "b"
    for root, names in ((a, ("alpha", "beta", "gamma")), (b, ("delta", "epsilon"))):
        root.mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / name).touch()
    return a, b


def settle(*paths: Path) -> None:
    """Wait until the directories are old enough for a node to cache their listings."""
    youngest = max(max(p.stat().st_mtime, p.stat().st_ctime) for p in paths)
    time.sleep(max(0.0, youngest + SETTLE - time.time()))


# -- the cases ----------------------------------------------------------------------------------

def case_a(procs: Processes, report: Report, scale: Scale) -> None:
    """(a) tiny listing through A -> B with the Python API, against a raw two-hop echo chain."""
    import zmq

    from zdir import Client, protocol

    a_root, b_root = tiny()
    settle(a_root, b_root)
    a, _ = procs.chain(a_root, b_root)
    echo_b = procs.ready([PY, "-c", ECHO])
    echo_a = procs.ready([PY, "-c", ECHO, echo_b.endpoint])
    context = zmq.Context()
    raw = context.socket(zmq.REQ)
    raw.connect(echo_a.endpoint)
    request = protocol.encode_request(protocol.Request("list", os.urandom(8), "", deadline_ms=5000))
    with Client(a.endpoint) as client:

        def ours() -> float:
            started = time.perf_counter()
            client.list()
            return time.perf_counter() - started

        def floor() -> float:
            started = time.perf_counter()
            raw.send(request)
            raw.recv_multipart()
            return time.perf_counter() - started

        for warm in (ours, floor):
            for _ in range(200):
                warm()
        medians = rounds({"zdir": ours, "raw": floor}, scale.round_trips, 100)
    raw.close(linger=0)
    context.term()
    ratio = medians["zdir"] / medians["raw"]
    report.figures["a"] = medians
    report.add(Row("a", "tiny listing A->B, Python API", us(medians["zdir"]),
                   f"raw pyzmq REQ/REP echo chain {us(medians['raw'])}", f"{ratio:.2f}x",
                   "<= 1.5x", verdict(ratio <= 1.5)))


def case_b(procs: Processes, report: Report, scale: Scale) -> None:
    """(b) the whole client process on a tiny listing, against importing zmq and msgpack."""
    a_root, b_root = tiny()
    settle(a_root, b_root)
    a, _ = procs.chain(a_root, b_root)
    subprocess.run([PY, "-m", "compileall", "-q", str(REPO / "zdir")], check=True)
    ours = [PY, "-m", "zdir.client", "--server", a.endpoint]
    floor = [PY, "-c", "import zmq, msgpack"]
    for cmd in (ours, floor):
        timed(cmd)
    medians = rounds({"zdir": lambda: timed(ours), "floor": lambda: timed(floor)},
                     scale.processes, 2)
    ratio = medians["zdir"] / medians["floor"]
    report.figures["b"] = medians
    report.add(Row("b", "python -m zdir.client, tiny listing", ms(medians["zdir"]),
                   f"python -c 'import zmq, msgpack' {ms(medians['floor'])}", f"{ratio:.2f}x",
                   "<= 1.3x", verdict(ratio <= 1.3)))


def ensure_tools(report: Report, wanted: Dict[str, str]) -> Dict[str, Optional[str]]:
    """Commands (name: Debian package) installed with apt-get if missing; their paths or None."""
    missing = [pkg for tool, pkg in wanted.items() if not shutil.which(tool)]
    if missing and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"  installing {' '.join(missing)} with apt-get...", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                 "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
        if subprocess.run(["apt-get", "install", "-y", "-qq", *missing], **quiet).returncode:
            subprocess.run(["apt-get", "update", "-qq"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], **quiet)
    found = {tool: shutil.which(tool) for tool in wanted}
    for tool, path in found.items():
        if path is None:
            report.note(f"{tool} is not installed and could not be (needs root and apt-get): "
                        "its rows are skipped")
    return found


NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;
  uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;
  server {{
    listen 127.0.0.1:{port};
    location / {{ root {root}; autoindex on; autoindex_format json; }}
  }}
}}
"""


def start_nginx(procs: Processes, root: Path, name: str) -> int:
    workdir = CACHE / "run" / name
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, root=root))
    procs.spawn(["nginx", "-c", str(conf), "-p", str(workdir)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return port


def start_rsyncd(procs: Processes, big: Path) -> int:
    workdir = CACHE / "run" / "rsyncd"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "rsyncd.conf"
    identity = f"uid = {os.getuid()}\ngid = {os.getgid()}\n" if os.getuid() == 0 else ""
    conf.write_text(f"use chroot = no\n{identity}pid file = {workdir}/rsyncd.pid\n"
                    f"[a]\npath = {big}/a\nread only = yes\n[b]\npath = {big}/b\nread only = yes\n")
    procs.spawn(["rsync", "--daemon", "--no-detach", f"--config={conf}", f"--port={port}",
                 "--address=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return port


def both(first: str, second: str) -> List[str]:
    """A shell line running two commands at once and waiting for both (two hosts' worth)."""
    return [f"{first} & {second} & wait"]


def case_c(procs: Processes, report: Report, scale: Scale) -> None:
    """(c) 2 x N entries with metadata, merged, whole process to /dev/null, against the tools."""
    big = CACHE / f"big-{scale.big}"
    a_dir = build(big / "a", scale.big, lambda i: f"f{2 * i:07d}.dat")
    b_dir = build(big / "b", scale.big, lambda i: f"f{2 * i + 1:07d}.dat")
    settle(a_dir, b_dir)
    tools = ensure_tools(report, {"nginx": "nginx", "rsync": "rsync", "rclone": "rclone",
                                  "curl": "curl"})
    warm, _ = procs.chain(a_dir, b_dir, *WARM)
    cold, _ = procs.chain(a_dir, b_dir, *COLD)
    client = [PY, "-m", "zdir.client", "--timeout", "60"]
    contenders: Dict[str, List[str]] = {
        "zdir --json, cached": [*client, "--server", warm.endpoint, "--json"],
        "zdir --json, cache off": [*client, "--server", cold.endpoint, "--json"],
        "zdir names only, cached": [*client, "--server", warm.endpoint],
        "GNU find -printf": ["find", str(a_dir), str(b_dir), "-mindepth", "1", "-maxdepth", "1",
                             "-printf", r"%f\t%y\t%s\t%T@\t%m\n"],
    }
    shells = set()
    if tools["nginx"] and tools["curl"]:
        one = start_nginx(procs, big, "nginx-one")
        two_a, two_b = start_nginx(procs, big, "nginx-a"), start_nginx(procs, big, "nginx-b")
        curl = "curl -sf -o /dev/null"
        contenders["nginx autoindex json, 1 server"] = both(
            f"{curl} http://127.0.0.1:{one}/a/", f"{curl} http://127.0.0.1:{one}/b/")
        contenders["nginx autoindex json, 2 servers"] = both(
            f"{curl} http://127.0.0.1:{two_a}/a/", f"{curl} http://127.0.0.1:{two_b}/b/")
        shells |= {"nginx autoindex json, 1 server", "nginx autoindex json, 2 servers"}
    if tools["rsync"]:
        port = start_rsyncd(procs, big)
        contenders["rsync --list-only, daemon"] = both(
            f"rsync --list-only rsync://127.0.0.1:{port}/a/ >/dev/null",
            f"rsync --list-only rsync://127.0.0.1:{port}/b/ >/dev/null")
        shells.add("rsync --list-only, daemon")
    if tools["rclone"]:
        conf = CACHE / "run" / "rclone.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f"[both]\ntype = union\nupstreams = {a_dir} {b_dir}\n")
        contenders["rclone lsjson, union"] = ["rclone", "--config", str(conf), "lsjson", "both:"]
    check_counts(contenders, shells, 2 * scale.big)
    for name, cmd in contenders.items():  # warm-up: page cache, the nodes' listing caches
        timed(cmd, shell=name in shells)
    samples: Dict[str, List[float]] = {name: [] for name in contenders}
    for _ in range(scale.listings):
        for name, cmd in contenders.items():
            samples[name].append(timed(cmd, shell=name in shells))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    report.figures["c"] = {"entries": 2 * scale.big, "medians": medians}
    ours = medians["zdir --json, cached"]
    peers = {k: v for k, v in medians.items() if not k.startswith("zdir")}
    for name, value in medians.items():
        if name == "zdir --json, cached":
            best = min(peers.values(), default=None)
            report.add(Row("c", f"{name} (2 x {scale.big:,})", ms(value),
                           "the fastest tool" + (f" {ms(best)}" if best else ""),
                           f"{value / best:.2f}x" if best else "", "faster than every tool",
                           verdict(best is None or value < best)))
        else:
            report.add(Row("c", name, ms(value), "zdir --json, cached", f"{ours / value:.2f}x"))


def check_counts(contenders: Dict[str, List[str]], shells: set, expected: int) -> None:
    """Every contender lists every entry (a tool that lists nothing would look fast)."""
    for name, cmd in contenders.items():
        if name in shells:
            line = cmd[0].replace(" -o /dev/null", "").replace(" >/dev/null", "")
            out = subprocess.run(line.replace(" & wait", "; wait").replace(" & ", "; "),
                                 shell=True, capture_output=True, text=True, env=child_env()).stdout
        else:
            out = subprocess.run(cmd, capture_output=True, text=True, env=child_env()).stdout
        if "nginx" in name or "rclone" in name:
            count = out.count('"name"') + out.count('"Name"')
        elif "--json" in name:
            count = len(json.loads(out)["entries"])
        elif "rsync" in name:
            count = sum(1 for line in out.splitlines() if not line.rstrip().endswith(" ."))
        else:
            count = len(out.splitlines())
        if count != expected:
            raise RuntimeError(f"{name} listed {count} entries, not {expected}")


def compact_tuples_kib(endpoint: str, stat: bool) -> int:
    """What the sorted listing weighs as one tuple per entry, values included (KiB)."""
    from zdir import Client

    with Client(endpoint, timeout=300) as client:
        entries = client.list(stat=stat).entries
    rows = sorted(zip(entries.names, entries.types, entries.sizes or [None] * len(entries),
                      entries.mtimes or [None] * len(entries),
                      entries.modes or [None] * len(entries), entries.sources))
    size = sys.getsizeof(rows)
    seen = set()
    for row in rows:
        size += sys.getsizeof(row)
        for value in row:
            if value is not None and id(value) not in seen and not isinstance(value, bool):
                if not (isinstance(value, int) and -5 <= value <= 256):
                    seen.add(id(value))
                    size += sys.getsizeof(value)
    return size // 1024


def case_d(procs: Processes, report: Report, scale: Scale) -> None:
    """(d) a million entries from B through A: client wall time, peak RSS of A, B and client."""
    million = build(CACHE / f"million-{scale.million}" / "m", scale.million,
                    lambda i: f"m{i:07d}.dat")
    empty = CACHE / "empty"
    empty.mkdir(exist_ok=True)
    settle(million)
    gnu_time = ensure_tools(report, {"time": "time"})["time"]
    if gnu_time is None:
        return
    b = procs.node(million, "--name", "server_b", *WARM)
    a = procs.node(empty, "--name", "server_a", "--upstream", b.endpoint, *LONG)
    client = [PY, "-m", "zdir.client", "--server", a.endpoint, "--timeout", "300"]
    runs = [("names, sorted (cold)", []), ("names, sorted", []), ("names, -U unsorted", ["-U"]),
            ("--json, sorted (cold)", ["--json"]), ("--json, sorted", ["--json"])]
    results = {}
    for label, flags in runs:
        elapsed, rss = timed_rss(gnu_time, [*client, *flags])
        results[label] = {"seconds": elapsed, "client_kib": rss, "a_kib": peak_rss_kib(a.proc),
                          "b_kib": peak_rss_kib(b.proc)}
        report.add(Row("d", f"{scale.million:,} entries, {label}", f"{elapsed:.2f} s",
                       f"client peak {mib(rss)}"))
    a_peak, b_peak = peak_rss_kib(a.proc), peak_rss_kib(b.proc)
    names_ref = compact_tuples_kib(a.endpoint, stat=False)
    stat_ref = compact_tuples_kib(a.endpoint, stat=True)
    names_client = max(results[k]["client_kib"] for k in results if k.startswith("names"))
    json_client = max(results[k]["client_kib"] for k in results if k.startswith("--json"))
    report.figures["d"] = {"runs": results, "a_peak_kib": a_peak, "b_peak_kib": b_peak,
                           "tuples_names_kib": names_ref, "tuples_stat_kib": stat_ref}
    for who, peak in (("A", a_peak), ("B", b_peak)):
        report.add(Row("d", f"peak RSS of {who}", mib(peak), "", "", "<= 100 MiB",
                       verdict(peak <= 100 * 1024)))
    for label, peak, ref in (("names", names_client, names_ref), ("--json", json_client, stat_ref)):
        report.add(Row("d", f"client peak RSS, {label}", mib(peak),
                       f"sorted entries as tuples {mib(ref)}", f"{peak / ref:.2f}x", "<= 2x",
                       verdict(peak <= 2 * ref)))


def case_e(procs: Processes, report: Report, scale: Scale) -> None:
    """(e) a tiny listing through A with 8 upstreams, against A with one."""
    from zdir import Client

    a_root, b_root = tiny()
    settle(a_root, b_root)
    upstreams = [procs.node(b_root, "--name", f"b{i}") for i in range(8)]
    eight = procs.node(a_root, "--name", "a8",
                       *[arg for u in upstreams for arg in ("--upstream", u.endpoint)])
    one = procs.node(a_root, "--name", "a1", "--upstream", upstreams[0].endpoint)
    with Client(eight.endpoint) as c8, Client(one.endpoint) as c1:

        def sample(client: "Client") -> Callable[[], float]:
            def run() -> float:
                started = time.perf_counter()
                listing = client.list()
                elapsed = time.perf_counter() - started
                if not listing.complete:
                    raise RuntimeError(f"a source failed: {listing.failed}")
                return elapsed
            return run

        for warm in (sample(c8), sample(c1)):
            for _ in range(100):
                warm()
        medians = rounds({"8": sample(c8), "1": sample(c1)}, scale.round_trips // 2, 50)
    ratio = medians["8"] / medians["1"]
    report.figures["e"] = medians
    report.add(Row("e", "tiny listing, A with 8 upstreams", us(medians["8"]),
                   f"A with 1 upstream {us(medians['1'])}", f"{ratio:.2f}x", "<= 1.5x",
                   verdict(ratio <= 1.5)))


def load_client(endpoint: str, start_at: float, seconds: float) -> List[float]:
    """One of case (f)'s clients: tiny listings back to back; each one's latency."""
    from zdir import Client

    latencies = []
    with Client(endpoint) as client:
        client.list()
        time.sleep(max(0.0, start_at - time.time()))
        ends = start_at + seconds
        while time.time() < ends:
            started = time.perf_counter()
            client.list()
            latencies.append(time.perf_counter() - started)
    return latencies


def case_f(procs: Processes, report: Report, scale: Scale) -> None:
    """(f) 16 clients at once on the A -> B chain: throughput, p50 and p99."""
    a_root, b_root = tiny()
    settle(a_root, b_root)
    a, _ = procs.chain(a_root, b_root)
    clients = 16
    start_at = time.time() + 3.0  # every client process imported and connected by then
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(clients) as pool:
        results = pool.starmap(load_client, [(a.endpoint, start_at, scale.seconds)] * clients)
    latencies = sorted(x for r in results for x in r)
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rate = len(latencies) / scale.seconds
    report.figures["f"] = {"requests": len(latencies), "per_second": rate, "p50": p50, "p99": p99}
    report.add(Row("f", f"{clients} concurrent clients, tiny listing A->B",
                   f"{rate:.0f} listings/s", f"p50 {ms(p50)}, p99 {ms(p99)}"))


CASE_FUNCTIONS = {"a": case_a, "b": case_b, "c": case_c, "d": case_d, "e": case_e, "f": case_f}


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or model
    import msgpack
    import zmq

    return (f"{os.cpu_count()} cores, {model}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, pyzmq {zmq.__version__} (libzmq "
            f"{zmq.zmq_version()}), msgpack {'.'.join(map(str, msgpack.version))}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(CASES),
                        help="cases to run, comma-separated (default: a,b,c,d,e,f)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller directories and fewer runs (a smoke test, not the figures)")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; cases are {', '.join(CASES)}")
    scale = QUICK if args.quick else FULL
    sys.path.insert(0, str(REPO))  # the zdir beside this script, installed or not
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                             os.environ.get("PYTHONPATH")]))
    CACHE.mkdir(exist_ok=True)
    report = Report()
    command = " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    header = f"machine: {machine()}\ncommand: {command}"
    print(header, flush=True)
    procs = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        for case in chosen:
            print(f"({case}) {CASE_FUNCTIONS[case].__doc__.split(')', 1)[1].strip()}", flush=True)
            try:
                CASE_FUNCTIONS[case](procs, report, scale)
            finally:
                procs.stop_all()
    finally:
        procs.stop_all()
    print("\n" + header + "\n\n" + report.table())
    for note in report.notes:
        print(f"note: {note}")
    results = {"machine": machine(), "quick": args.quick, "figures": report.figures,
               "rows": [r._asdict() for r in report.rows], "notes": report.notes}
    (CACHE / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
