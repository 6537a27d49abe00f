"""Issue 14: 1,000 sources of 100 entries, flat and as a two-level tree; failures; 10,000.

The leaves are tests/fleetsim.py (N protocol-level nodes on N loopback ports in
one process, some of which may refuse connections or freeze). Flat: one A with
``--upstreams-file``. Tree: examples/fleet/tree.py's layout, ten relays, each in
front of its share of the leaves, and a top node in front of the relays. Every
figure is the whole client process with default flags (``zdir``: the merged
listing, names sorted, sources folded; ``zdir --ping``). Healthy fleets: the
servers are started once and asked once before the timed runs. With 100
refusing and 10 frozen leaves, the servers are started afresh for every run, so
each run measures the first discovery (exit 3, every failed source named).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from common import (Processes, Report, Server, empty_dir, fd_kinds, fleet, median, mib,
                    open_fds, run, seconds, status_kib, tree, zdir)

NODES = 1000
ENTRIES = 100  # fleetsim's default
RELAYS = 10
BIG_FLEET = 10_000
FAILING = {"refuse": 100, "freeze": 10}
LIMIT_KIB = 100 * 1024


def servers(procs: Processes, leaves: Path, layout: str, work: Path
            ) -> Tuple[Server, List[Server]]:
    """The node the client asks, and every zdir node of the layout (flat: just A)."""
    if layout == "flat":
        a = procs.node(empty_dir(), "server_a", "--upstreams-file", str(leaves))
        return a, [a]
    top, relays = tree(procs, leaves, RELAYS, work)
    return top, [top, *relays]


def first_complete(endpoint: str, started: float, limit: float = 60.0
                   ) -> Tuple[float, int, str]:
    """Ask until the listing is complete (exit 0) or ``limit`` passes: seconds since
    ``started``, attempts, and the last summary line ("" once complete)."""
    attempts, summary = 0, ""
    while True:
        attempts += 1
        result = run(zdir(endpoint), check=())
        summary = "" if result.status == 0 else (result.stderr.strip().splitlines() or [""])[-1]
        if result.status == 0 or time.monotonic() - started > limit:
            return time.monotonic() - started, attempts, summary


def timed(endpoint: str, runs: int, *flags: str, status: int = 0, lines: Optional[int] = None
          ) -> List[float]:
    samples = []
    for _ in range(runs):
        result = run(zdir(endpoint, *flags), check=(status,), count=True)
        if lines is not None and result.lines != lines:
            raise RuntimeError(f"zdir {' '.join(flags)}: {result.lines} lines, not {lines}")
        samples.append(result.seconds)
    return samples


def measure(procs: Processes, report: Report, runs: int) -> None:
    figures: Dict[str, object] = {}
    report.figures["fleet"] = figures
    with tempfile.TemporaryDirectory(prefix="zdir-bench-fleet-") as scratch:
        work = Path(scratch)
        healthy = work / "leaves.txt"
        sims = fleet(procs, NODES, healthy)
        for layout in ("flat", "tree"):
            front, nodes = servers(procs, healthy, layout, work)
            _, _, summary = first_complete(front.endpoint, time.monotonic())  # connected
            if summary:
                raise RuntimeError(f"{layout}: no complete listing in a minute: {summary}")
            listing = timed(front.endpoint, runs, lines=ENTRIES)
            ping = timed(front.endpoint, runs, "--ping")
            peak = max(status_kib(n.proc) for n in nodes)
            fds = open_fds(front.proc)
            biggest = max(open_fds(n.proc) for n in nodes[1:]) if len(nodes) > 1 else fds
            kinds = fd_kinds(front.proc if layout == "flat" else nodes[1].proc)
            figures[layout] = {"listing": listing, "ping": ping, "peak_kib": peak, "fds": fds,
                               "relay_fds": biggest, "fd_kinds": kinds}
            report.note(f"{layout}: descriptors of {'A' if layout == 'flat' else 'relay01'} "
                        f"by kind: {kinds}")
            what = f"1,000 x 100, {layout}" + (f" ({RELAYS} relays)" if layout == "tree" else "")
            report.add("14", f"{what}: `zdir`, exit 0", seconds(median(listing)), "", "",
                       "<= 1.5 s", "met" if median(listing) <= 1.5 else "MISSED")
            report.add("14", f"{what}: `zdir --ping`", seconds(median(ping)), "", "", "<= 0.5 s",
                       "met" if median(ping) <= 0.5 else "MISSED")
            who = "A" if layout == "flat" else "the largest of top and relays"
            report.add("14", f"{what}: peak RSS of {who}", mib(peak), "", "", "<= 100 MiB",
                       "met" if peak <= LIMIT_KIB else "MISSED")
            per = (fds / NODES) if layout == "flat" else (biggest / (NODES / RELAYS))
            report.add("14", f"{what}: open fds per upstream", f"{per:.2f}",
                       f"{fds} fds in A" if layout == "flat" else
                       f"{biggest} fds in a relay of {NODES // RELAYS}", "", "about 1",
                       "met" if per <= 1.5 else "MISSED")
            for node in nodes:
                procs.stop(node.proc)
        for sim in sims:
            procs.stop(sim)

        failing = work / "failing.txt"
        sims = fleet(procs, NODES, failing, **FAILING)
        for layout in ("flat", "tree"):
            samples, summary = [], ""
            for _ in range(min(runs, 3)):
                front, nodes = servers(procs, failing, layout, work)
                result = run(zdir(front.endpoint), check=(3,), count=True)
                samples.append(result.seconds)
                summary = result.stderr.strip().splitlines()[-1] if result.stderr else ""
                for node in nodes:
                    procs.stop(node.proc)
            figures[f"{layout}, failing"] = {"listing": samples, "summary": summary}
            report.add("14", f"1,000 x 100, {layout}, 100 refusing + 10 frozen: `zdir`, exit 3",
                       seconds(median(samples)), "first request after start", "",
                       "<= 2.5 s", "met" if median(samples) <= 2.5 else "MISSED")
            report.note(f"{layout}, failing: {summary[:300]}")
        for sim in sims:
            procs.stop(sim)

        many = work / "many.txt"
        fleet(procs, BIG_FLEET, many)
        began = time.monotonic()
        front, nodes = servers(procs, many, "tree", work)
        ready = time.monotonic() - began
        settled, attempts, summary = first_complete(front.endpoint, time.monotonic())
        figures["10000"] = {"started_s": ready, "first_complete_s": settled,
                            "attempts": attempts, "summary": summary}
        if summary:
            counts = summary.split(";")[0]
            report.add("14", f"10,000 x 100, tree ({RELAYS} relays of 1,000): `zdir`",
                       "incomplete", f"after {settled:.0f} s and {attempts} attempts: {counts}",
                       "", "complete", "MISSED")
            report.note(f"10,000: {summary[:400]}")
            return
        report.note(f"10,000: the tree's nodes started in {ready:.1f} s; the first complete "
                    f"listing came {settled:.1f} s later, at attempt {attempts}")
        listing = timed(front.endpoint, min(runs, 3), lines=ENTRIES)
        peak = max(status_kib(n.proc) for n in nodes)
        figures["10000"].update(listing=listing, peak_kib=peak)  # type: ignore[union-attr]
        report.add("14", f"10,000 x 100, tree ({RELAYS} relays of 1,000): `zdir`, exit 0",
                   seconds(median(listing)), f"peak RSS of the largest node {mib(peak)}")
