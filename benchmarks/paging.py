"""Paged listings against today's single reply (issue 12's targets), in one run.

    python benchmarks/paging.py            # trees of 1,000,000 entries (built once, in /dev/shm)
    python benchmarks/paging.py --quick    # 100,000

1. First line: ``zdir -R | head -1`` on B's tree, from the client's start, against
   ``find ROOT | head -1`` and ``zdir -R --page-entries 0`` (today's single reply).
   B is started afresh before each run (cold: no cursor, no cache).
2. ``zdir -R --ndjson > /dev/null`` through A and B (a tree each): total time and the
   peak RSS (VmHWM) of A, B and the client, paged and unpaged.
3. One directory of N entries in name order (``zdir > /dev/null``): total time paged
   and unpaged, and B's ``getdents64`` calls (strace): a paged listing reads the
   directory once, through its cursor. (On disk, under benchmarks/.cache: a tmpfs
   may not have inodes for three trees of a million.)
Figures are medians of RUNS runs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from common import PY  # noqa: E402  (the user-like venv: see common.user_python)
BASE = (Path("/dev/shm/zdir-paging-bench") if os.path.isdir("/dev/shm")
        else REPO / "benchmarks/.cache/paging")
FLAT_BASE = REPO / "benchmarks/.cache/paging"  # on disk: a tmpfs may run out of inodes
RUNS = 3
READY = re.compile(r"^(\S+) listening on (\S+) ")
PER_DIRECTORY = 10_000


def env() -> Dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ZDIR_")},
            "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}


def fill(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        for index in range(count):
            os.mknod(f"file-{index:07d}", 0o100644, dir_fd=fd)
    finally:
        os.close(fd)


def tree(root: Path, entries: int, flat: bool = False) -> Path:
    done = root / ".built"
    if done.exists():
        return root
    if flat:
        fill(root, entries)
    else:
        for index in range(entries // PER_DIRECTORY):
            fill(root / f"d{index:04d}", PER_DIRECTORY)
    done.touch()
    return root


class Node:
    """A server process on a free loopback port, stopped by pid."""

    def __init__(self, module: str, root: Path, *args: str, prefix: Sequence[str] = ()) -> None:
        self.proc = subprocess.Popen(
            [*prefix, PY, "-m", f"zdir.{module}", "--root", str(root), "--bind",
             "tcp://127.0.0.1:*", "--log-level", "WARNING", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env())
        line = self.proc.stdout.readline().decode()
        match = READY.match(line)
        if not match:
            self.stop()
            raise RuntimeError(f"{module}: no ready line: {line!r}")
        self.endpoint = match[2]
        self.pid = self.server_pid(prefix)

    def server_pid(self, prefix: Sequence[str]) -> int:
        if not prefix:
            return self.proc.pid
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        return int(children[0]) if children else self.proc.pid

    def peak_mib(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.pid != self.proc.pid and self.proc.poll() is None:
            os.kill(self.pid, 15)  # the server under strace: strace then writes its summary
        if self.proc.poll() is None:
            if self.pid != self.proc.pid:
                try:
                    self.proc.wait(10)
                    return
                except subprocess.TimeoutExpired:
                    pass
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def first_line(command: List[str]) -> float:
    """Seconds from the start of ``command`` to its first line of output; then it is killed."""
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env())
    line = proc.stdout.readline()
    elapsed = time.monotonic() - started
    proc.kill()
    proc.wait()
    assert line, command
    return elapsed


CLIENT = ("import sys; from zdir.client import main; code = main(sys.argv[1:]); "
          "status = open('/proc/self/status').read(); "
          "print([l for l in status.splitlines() if l.startswith('VmHWM')][0], file=sys.stderr); "
          "raise SystemExit(code)")


def whole(args: List[str]) -> Tuple[float, float]:
    """Seconds for a whole listing into /dev/null, and the client's peak RSS in MiB."""
    started = time.monotonic()
    with open(os.devnull, "wb") as sink:
        proc = subprocess.run([PY, "-c", CLIENT, *args, "--timeout", "600"], stdout=sink,
                              stderr=subprocess.PIPE, env=env())
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode())
    return elapsed, int(proc.stderr.decode().split("VmHWM:")[1].split()[0]) / 1024


def median(values: List[float]) -> float:
    return statistics.median(values)


def first_line_case(root: Path) -> Dict[str, float]:
    found = {"find": [], "zdir paged": [], "zdir unpaged": []}  # type: Dict[str, List[float]]
    for _ in range(RUNS):
        found["find"].append(first_line(["find", str(root)]))
        for label, extra in (("zdir paged", []), ("zdir unpaged", ["--page-entries", "0"])):
            node = Node("server_b", root, "--name", "b")
            try:
                found[label].append(first_line([PY, "-m", "zdir.client", "--server",
                                                node.endpoint, "-R", *extra]))
            finally:
                node.stop()
    return {label: median(times) for label, times in found.items()}


def chain_case(a_root: Path, b_root: Path) -> Dict[str, Dict[str, float]]:
    results = {}
    for label, extra in (("paged", []), ("unpaged", ["--page-entries", "0"])):
        times, peaks = [], []
        for _ in range(RUNS):
            b = Node("server_b", b_root, "--name", "b")
            a = Node("server_a", a_root, "--name", "a", "--upstream", b.endpoint)
            try:
                elapsed, client = whole(["--server", a.endpoint, "-R", "--ndjson", *extra])
                times.append(elapsed)
                peaks.append((client, a.peak_mib(), b.peak_mib()))
            finally:
                a.stop()
                b.stop()
        results[label] = {"seconds": median(times),
                          "client MiB": max(p[0] for p in peaks),
                          "A MiB": max(p[1] for p in peaks), "B MiB": max(p[2] for p in peaks)}
    return results


def flat_case(root: Path) -> Dict[str, Dict[str, float]]:
    results = {}
    for label, extra in (("paged", []), ("unpaged", ["--page-entries", "0"])):
        times = []
        for _ in range(RUNS):
            node = Node("server_b", root, "--name", "b")
            try:
                times.append(whole(["--server", node.endpoint, *extra])[0])
            finally:
                node.stop()
        trace = FLAT_BASE / f"strace-{label}.txt"
        node = Node("server_b", root, "--name", "b", prefix=["strace", "-f", "-c", "-o",
                                                              str(trace), "-e",
                                                              "trace=getdents64"])
        try:
            whole(["--server", node.endpoint, *extra])
        finally:
            node.stop()
        calls = _calls(trace.read_text())
        results[label] = {"seconds": median(times), "getdents64 calls": calls}
    return results


def _calls(text: str) -> float:
    for line in text.splitlines():
        if line.rstrip().endswith("getdents64"):
            return float(line.split()[3])
    return float("nan")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 entries, not 1,000,000")
    args = parser.parse_args(argv)
    entries = 100_000 if args.quick else 1_000_000
    print(f"building trees of {entries} entries in {BASE} (once)...", flush=True)
    a_root = tree(BASE / f"a-{entries}", entries)
    b_root = tree(BASE / f"b-{entries}", entries)
    flat = tree(FLAT_BASE / f"flat-{entries}", entries, flat=True)
    print(f"\n1. first line of -R over {entries} entries on B (median of {RUNS}, s)")
    for label, seconds in first_line_case(b_root).items():
        print(f"   {label:<14} {seconds:7.3f}")
    print(f"\n2. -R --ndjson > /dev/null through A and B, {2 * entries} entries")
    for label, figures in chain_case(a_root, b_root).items():
        print(f"   {label:<9} " + "  ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    print(f"\n3. one directory of {entries} entries, name order, > /dev/null")
    for label, figures in flat_case(flat).items():
        print(f"   {label:<9} " + "  ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
