"""Memory stays bounded on every hop for a streamed paged listing (issue 12, item 4).

``zdir -R --ndjson`` through A (a relay with its own root) and B: the peak RSS of B,
A and the client must not grow with the listing. Measured on two trees, one three
times the other, in directories of one size (each directory is read whole to sort
it, so its size counts, not the listing's): each process grows by less than
``GROWTH_MIB``, and stays at or below ``PEAK_RSS_MIB``. Unpaged, the client alone
would grow by tens of MiB (it holds the whole reply), as would A.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env
from test_million import SHM, empty_and_remove, fill, peak_rss_mib

SMALL, LARGE = 60_000, 180_000  # entries per side (A and B) ...
PER_DIRECTORY = 10_000  # ... in directories of this many: a directory is sorted whole
GROWTH_MIB = 12  # A measured +8 MiB from 120k to 360k entries, and +7 from 120k to 600k: a plateau
PEAK_RSS_MIB = 100

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CLIENT = ("import sys; from zdir.client import main; code = main(sys.argv[1:]); "
          "status = open('/proc/self/status').read(); "
          "print([l for l in status.splitlines() if l.startswith('VmHWM')][0], file=sys.stderr); "
          "raise SystemExit(code)")


def tree(root: Path, entries: int) -> None:
    for index in range(entries // PER_DIRECTORY):
        directory = root / f"d{index:03d}"
        directory.mkdir(parents=True)
        fill(directory, PER_DIRECTORY)


def remove(root: Path) -> None:
    if root.exists():
        for directory in root.iterdir():
            empty_and_remove(directory)
        root.rmdir()


def stream(cluster, base: Path, entries: int):
    """Start B and A on fresh trees, stream the listing; the three peaks in MiB."""
    a_root, b_root = base / f"a{entries}", base / f"b{entries}"
    tree(a_root, entries)
    tree(b_root, entries)
    b = cluster.b(b_root, "--name", f"b{entries}")
    a = cluster.a(a_root, b.endpoint, args=["--name", f"a{entries}"])
    with open(os.devnull, "wb") as sink:
        proc = subprocess.run([sys.executable, "-c", CLIENT, "--server", a.endpoint, "-R",
                               "--ndjson", "--page-entries", "10000", "--timeout", "120"],
                              stdout=sink, stderr=subprocess.PIPE, env=clean_env(), timeout=240)
    assert proc.returncode == 0, proc.stderr
    client = int(proc.stderr.decode().split("VmHWM:")[1].split()[0]) / 1024
    peaks = {"client": client, "A": peak_rss_mib(a.pid), "B": peak_rss_mib(b.pid)}
    a.stop()
    b.stop()
    return peaks


def test_peak_rss_does_not_grow_with_the_listing(cluster, tmp_path):
    base = Path(SHM) / f"zdir-paging-{os.getpid()}" if os.path.isdir(SHM) else tmp_path
    base.mkdir(exist_ok=True)
    try:
        small = stream(cluster, base, SMALL)
        large = stream(cluster, base, LARGE)
    finally:
        for side in ("a", "b"):
            for entries in (SMALL, LARGE):
                remove(base / f"{side}{entries}")
        if base != tmp_path:
            base.rmdir()
    print(f"peak RSS MiB, {2 * SMALL} entries: {small}; {2 * LARGE} entries: {large}")
    for process in ("client", "A", "B"):
        assert large[process] <= PEAK_RSS_MIB, (process, large)
        assert large[process] - small[process] < GROWTH_MIB, (process, small, large)
