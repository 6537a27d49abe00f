"""Shared set-up for the benchmark cases: processes, servers, peers, directories, timing, the table.

Every process a case starts goes through ``Processes`` and is stopped by pid when
the case ends (SIGCONT first, for one a case froze). Everything binds 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from uservenv import user_python

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"  # git-ignored: the test directories, peers' run files, results.json
SHM = Path("/dev/shm")
USER_VENV = CACHE / "user-venv"  # see uservenv.py
BEFORE_COMMIT = "8d26bf8"  # issue 9's "before": the node before the one-loop rewrite
BEFORE_TREE = Path("/tmp/zdir-before")  # git worktree add --detach /tmp/zdir-before 8d26bf8
READY = re.compile(r"^(?P<name>\S+) listening on (?P<endpoint>\S+) root=")
START_TIMEOUT = 120.0  # a node in front of 1,000 upstreams; ten thousand simulated nodes
STOP_TIMEOUT = 5.0
BIG = 100_000  # entries in each of the two directories of the listing case
MAX_SIZE = 4096  # bytes, of the test files
FLEETSIM = REPO / "tests" / "fleetsim.py"
SIM_NODES = 1000  # simulated nodes per simulator process (see fleet)


PY = user_python(USER_VENV)


# -- the table --------------------------------------------------------------------------------

class Row(NamedTuple):
    case: str
    what: str
    value: str  # the median, with its unit
    versus: str = ""  # what it is compared with, and that figure
    ratio: str = ""
    target: str = ""
    verdict: str = ""


class Report:
    """Rows for the table, notes for below it, raw figures for results.json."""

    def __init__(self) -> None:
        self.rows: List[Row] = []
        self.notes: List[str] = []
        self.figures: Dict[str, object] = {}

    def add(self, *cells: str) -> None:
        row = Row(*cells)
        self.rows.append(row)
        print(f"  {row.what}: {row.value}" + (f"  ({row.ratio} of {row.versus})" if row.ratio
                                                else f"  ({row.versus})" if row.versus else ""),
              flush=True)

    def compare(self, case: str, what: str, ours: float, versus: str, theirs: float,
                target: Optional[float] = None, unit: Callable[[float], str] = None) -> None:
        """A row with its ratio (ours / theirs), and the verdict when there is a target."""
        show = unit or seconds
        ratio = ours / theirs if theirs else float("inf")
        self.add(case, what, show(ours), f"{versus} {show(theirs)}", f"{ratio:.2f}x",
                 f"<= {target:g}x" if target else "", verdict(ratio <= target) if target else "")

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


def seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value * 1000:.0f} ms" if value >= 0.01 else f"{value * 1e6:.0f} us"


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# -- processes --------------------------------------------------------------------------------

def child_env(tree: Path = REPO) -> Dict[str, str]:
    """Children import zdir from ``tree`` (this checkout, or the "before" worktree)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDIR_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as after pip install
    env["PYTHONPATH"] = str(tree)
    return env


class Server(NamedTuple):
    proc: subprocess.Popen
    endpoint: str


class Processes:
    """Everything a case starts, stopped by pid at its end (SIGCONT, SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.started: List[subprocess.Popen] = []

    def spawn(self, cmd: Sequence[str], tree: Path = REPO, **kwargs) -> subprocess.Popen:
        # cwd is the tree: ``python -m`` puts the cwd first on sys.path
        proc = subprocess.Popen(list(cmd), env=child_env(tree), cwd=tree,
                                stdin=subprocess.DEVNULL, **kwargs)
        self.started.append(proc)
        return proc

    def ready(self, cmd: Sequence[str], pattern: "re.Pattern[str]" = READY,
              tree: Path = REPO, **kwargs) -> Server:
        """Start a process and wait for its ready line (``NAME listening on ENDPOINT ...``)."""
        proc = self.spawn(cmd, tree, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, **kwargs)
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = pattern.match(line)
        if not match:
            raise RuntimeError(f"{' '.join(map(str, cmd))}: no ready line (got {line!r})")
        return Server(proc, match.groupdict().get("endpoint", ""))

    def node(self, root: Path, name: str, *args: str, tree: Path = REPO) -> Server:
        """A zdir node with default flags (but WARNING logs) on a free loopback port."""
        return self.ready([PY, "-m", "zdir.server_b", "--root", str(root), "--name", name,
                           "--bind", "tcp://127.0.0.1:*", "--log-level", "WARNING", *args],
                          tree=tree)

    def chain(self, a_root: Path, b_root: Path, tree: Path = REPO) -> Tuple[Server, Server]:
        """B, and A in front of it."""
        b = self.node(b_root, "server_b", tree=tree)
        a = self.node(a_root, "server_a", "--upstream", b.endpoint, tree=tree)
        return a, b

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.started)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT) -> None:
    """nginx and rsyncd print nothing when ready: the port is the signal."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Run(NamedTuple):
    seconds: float
    status: int
    lines: int  # of stdout
    stderr: str
    peak_kib: int  # GNU time's %M, 0 without it


def run(cmd: Sequence[str], *, shell: bool = False, tree: Path = REPO, check: Sequence[int] = (0,),
        count: bool = False, rss: bool = False, timeout: float = 300.0) -> Run:
    """One whole-process run, timed; stdout to /dev/null (or counted), stderr kept."""
    argv: List[str] = list(cmd)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as report:
        if rss:
            argv = ["/usr/bin/time", "-f", "%M", "-o", report.name, *argv]
        sink = out if count else subprocess.DEVNULL
        started = time.perf_counter()
        proc = subprocess.run(argv[0] if shell else argv, shell=shell, env=child_env(tree),
                              cwd=tree, stdout=sink, stderr=err, stdin=subprocess.DEVNULL,
                              timeout=timeout)
        elapsed = time.perf_counter() - started
        err.seek(0)
        errors = err.read().decode(errors="replace")
        if check and proc.returncode not in check:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {errors[-500:]}")
        lines = 0
        if count:
            out.seek(0)
            lines = sum(block.count(b"\n") for block in iter(lambda: out.read(1 << 20), b""))
        peak = int(report.read().split()[-1]) if rss else 0
    return Run(elapsed, proc.returncode, lines, errors, peak)


def zdir(endpoint: str, *flags: str) -> List[str]:
    """The client command, as a user runs it."""
    return [PY, "-m", "zdir.client", "--server", endpoint, *flags]


def status_kib(proc: subprocess.Popen, field: str = "VmHWM") -> int:
    """A /proc/PID/status figure in KiB (VmHWM: the most it has ever held resident)."""
    with open(f"/proc/{proc.pid}/status") as status_file:
        for line in status_file:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {proc.pid}")


def open_fds(proc: subprocess.Popen) -> int:
    return len(os.listdir(f"/proc/{proc.pid}/fd"))


def has_gnu_time() -> bool:
    return os.path.exists("/usr/bin/time")


# -- peers ------------------------------------------------------------------------------------

def ensure_tools(report: Report, wanted: Dict[str, str]) -> Dict[str, Optional[str]]:
    """Commands (name: Debian package) installed with apt-get when missing and root."""
    missing = sorted({pkg for tool, pkg in wanted.items() if not shutil.which(tool)})
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
            why = "apt-get failed" if os.geteuid() == 0 else "installing it needs root"
            report.note(f"{tool} is missing ({why}): its rows are skipped")
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
    root {root};
    location / {{ autoindex on; autoindex_format json; }}
  }}
}}
"""


def start_nginx(procs: Processes, root: Path, name: str) -> int:
    """One nginx (one worker) serving ``root``'s directories as JSON autoindex; its port."""
    workdir = CACHE / "run" / name
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, root=root))
    procs.spawn(["nginx", "-c", str(conf), "-p", str(workdir)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return port


def start_rsyncd(procs: Processes, a_dir: Path, b_dir: Path) -> int:
    """An rsync daemon with modules a and b; its port."""
    workdir = CACHE / "run" / "rsyncd"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "rsyncd.conf"
    identity = f"uid = {os.getuid()}\ngid = {os.getgid()}\n" if os.getuid() == 0 else ""
    conf.write_text(f"use chroot = no\n{identity}pid file = {workdir}/rsyncd.pid\n"
                    f"[a]\npath = {a_dir}\nread only = yes\n[b]\npath = {b_dir}\nread only = yes\n")
    procs.spawn(["rsync", "--daemon", "--no-detach", f"--config={conf}", f"--port={port}",
                 "--address=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return port


def both(first: str, second: str) -> List[str]:
    """A shell line running two commands at once (two hosts' worth) and waiting for both."""
    return [f"{first} & {second} & wait"]


# -- directories ------------------------------------------------------------------------------

def build(path: Path, count: int, name: Callable[[int], str], *, empty: bool = False) -> Path:
    """COUNT files in PATH, built once (a marker says it is complete).

    Sizes 0-4095 (sparse) unless ``empty``: then ``os.mknod`` makes them, about
    six seconds for a million in /dev/shm.
    """
    marker = path.with_name(path.name + ".built")
    label = f"{count} files, " + ("empty" if empty else f"sizes below {MAX_SIZE}")
    if marker.exists() and marker.read_text() == label:
        return path
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    print(f"  building {path} ({count:,} files)...", flush=True)
    for i in range(count):
        if empty:
            os.mknod(path / name(i), 0o644 | stat.S_IFREG)
            continue
        fd = os.open(path / name(i), os.O_CREAT | os.O_WRONLY, 0o644)
        if i % 7:
            os.ftruncate(fd, (i * 7919) % MAX_SIZE)
        os.close(fd)
    marker.write_text(label)
    return path


def big_pair() -> Tuple[Path, Path]:
    """Two directories of 100,000 files, even numbers in one and odd in the other."""
    root = CACHE / f"big-{BIG}"
    return (build(root / "a", BIG, lambda i: f"f{2 * i:07d}.dat"),
            build(root / "b", BIG, lambda i: f"f{2 * i + 1:07d}.dat"))


def tiny_pair() -> Tuple[Path, Path]:
    a, b = CACHE / "tiny" / "a", CACHE / "tiny" / "b"
    for root, names in ((a, ("alpha", "beta", "gamma")), (b, ("delta", "epsilon"))):
        root.mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / name).touch()
    return a, b


def empty_dir() -> Path:
    path = CACHE / "empty"
    path.mkdir(parents=True, exist_ok=True)
    return path


def before_tree(report: Report) -> Optional[Path]:
    """The "before" checkout (a git worktree at BEFORE_COMMIT), made if missing."""
    if not (BEFORE_TREE / "zdir" / "server_b.py").exists():
        made = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach",
                               str(BEFORE_TREE), BEFORE_COMMIT], capture_output=True, text=True)
        if made.returncode:
            report.note(f"no 'before' tree at {BEFORE_TREE}: {made.stderr.strip()}")
            return None
    return BEFORE_TREE


# -- fleets -----------------------------------------------------------------------------------

FLEET_READY = re.compile(r"^fleetsim ready ")


def fleet(procs: Processes, nodes: int, upstreams: Path, **modes: int
          ) -> List[subprocess.Popen]:
    """tests/fleetsim.py serving ``nodes`` simulated nodes (100 entries each); their
    endpoints and names are written to ``upstreams``.

    One simulator serves at most SIM_NODES: it sets the context's MAX_SOCKETS after
    its first socket, when libzmq no longer takes it (so 1,023 sockets at most), and
    each node holds about three descriptors (listener, mailbox, connection) against
    a hard limit that only CAP_SYS_RESOURCE raises. A larger fleet is served by
    several simulators, ``node0...``, ``node1...``. Modes apply to the first one.
    """
    per = min(nodes, SIM_NODES)
    parts = -(-nodes // per)
    lines, started = [], []
    for part in range(parts):
        count = min(per, nodes - part * per)
        flags = [f"--{mode}={n}" for mode, n in modes.items() if n and part == 0]
        prefix = ["--prefix", f"node{part}"] if parts > 1 else []
        out = upstreams.with_name(f"{upstreams.stem}-{part}.txt")
        started.append(procs.ready([PY, str(FLEETSIM), "--nodes", str(count), "--upstreams-file",
                                    str(out), *prefix, *flags], FLEET_READY).proc)
        lines.append(out.read_text())
    upstreams.write_text("".join(lines))
    return started


def fd_kinds(proc: subprocess.Popen) -> Dict[str, int]:
    """The process's open descriptors by kind: socket, eventfd, pipe, file..."""
    kinds: Dict[str, int] = {}
    for fd in os.listdir(f"/proc/{proc.pid}/fd"):
        try:
            link = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
        except OSError:
            continue
        kind = link.split(":")[0] if ":" in link else "file"
        kind = "eventfd" if "eventfd" in link else "epoll" if "eventpoll" in link else kind
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def tree(procs: Processes, leaves: Path, relays: int, work: Path) -> Tuple[Server, List[Server]]:
    """examples/fleet/tree.py's layout: ``relays`` nodes, each in front of its contiguous
    share of the leaves, and a top node in front of the relays (empty roots)."""
    lines = [line for line in leaves.read_text().splitlines() if line.strip()]
    started = []
    for r in range(relays):
        share = work / f"relay{r + 1:02d}.txt"
        share.write_text("\n".join(lines[len(lines) * r // relays:
                                         len(lines) * (r + 1) // relays]) + "\n")
        started.append(procs.node(empty_dir(), f"relay{r + 1:02d}", "--upstreams-file",
                                  str(share)))
    top_file = work / "top.txt"
    top_file.write_text("".join(f"{s.endpoint} relay{i + 1:02d}\n" for i, s in enumerate(started)))
    return procs.node(empty_dir(), "top", "--upstreams-file", str(top_file)), started
