"""Issue 9: a directory of 1,000,000 entries on B, through A, with default flags everywhere.

The directory is built in /dev/shm with os.mknod (about six seconds) and removed
at the end (on disk in benchmarks/.cache, and kept, when /dev/shm lacks the
inodes). Each run starts A (an empty root) and B afresh, so the listing is cold,
and runs ``zdir`` (names, sorted: the default) under GNU time for the client's
peak RSS; A's and B's are their VmHWM after the run. "Before" (8d26bf8) is run
once, to show what a user got then.
"""

from __future__ import annotations

import os
import shutil
from typing import Dict, List

from common import (CACHE, SHM, Processes, Report, Run, before_tree, build, empty_dir, has_gnu_time,
                    median, mib, run, seconds, status_kib, zdir)

ENTRIES = 1_000_000
LIMIT_KIB = 100 * 1024


def measure(procs: Processes, report: Report, runs: int) -> None:
    if not SHM.is_dir():
        report.note("million: no /dev/shm, skipped")
        return
    if not has_gnu_time():
        report.note("million: GNU time (/usr/bin/time) is missing: the client's peak RSS is 0")
    root = SHM / "zdir-bench-million"
    if os.statvfs(SHM).f_favail < ENTRIES + 10_000:  # others' directories hold the inodes
        report.note("million: /dev/shm has too few free inodes; built on disk, in "
                    "benchmarks/.cache, and kept")
        root = CACHE / "million"
    try:
        directory = build(root / "m", ENTRIES, lambda i: f"m{i:07d}", empty=True)
        figures: Dict[str, List[float]] = {"seconds": [], "client": [], "a": [], "b": []}
        before = before_tree(report)
        was: List[Run] = []
        for _ in range(min(runs, 3)):  # before and after in turn: the load drifts
            a, b = procs.chain(empty_dir(), directory)
            result = run(zdir(a.endpoint), count=True, rss=has_gnu_time())
            if result.lines != ENTRIES:
                raise RuntimeError(f"zdir listed {result.lines} entries, not {ENTRIES:,}")
            for key, value in (("seconds", result.seconds), ("client", result.peak_kib),
                               ("a", status_kib(a.proc)), ("b", status_kib(b.proc))):
                figures[key].append(value)
            procs.stop(a.proc)
            procs.stop(b.proc)
            if before is not None:
                a, b = procs.chain(empty_dir(), directory, tree=before)
                was.append(run(zdir(a.endpoint), tree=before, count=True, check=(),
                               timeout=120))
                procs.stop(a.proc)
                procs.stop(b.proc)
        report.figures["million"] = {**figures, "before": [w._asdict() for w in was]}
        versus = ""
        if was:
            outcomes = "; ".join(f"exit {w.status}, {w.lines:,} entries in {seconds(w.seconds)}"
                                 for w in was)
            versus = f"before (8d26bf8): {outcomes}"
        took = median(figures["seconds"])
        report.add("9", "1,000,000 entries on B, `zdir` cold, exit 0, all entries",
                   seconds(took), versus)
        for who in ("a", "b", "client"):
            peak = max(figures[who])
            limit = who != "client"
            report.add("9", f"1,000,000 entries: peak RSS of {who.upper() if limit else who}",
                       mib(peak), "", "", "<= 100 MiB" if limit else "",
                       ("met" if peak <= LIMIT_KIB else "MISSED") if limit else "")
    finally:
        procs.stop_all()
        if root.parent == SHM:  # memory: give it back
            shutil.rmtree(root, ignore_errors=True)
