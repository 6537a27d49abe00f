"""Issue 9: how long a user waits to hear that a server is refused or frozen, before and after.

"Before" is commit 8d26bf8 (per-attempt timers: 5 s x 3 attempts in the client,
1.5 s x 2 on A), run from a git worktree in the same run, on the same machine,
with the same commands; "after" is this checkout. Each figure is the whole
client process with default flags:

- refused: nothing listens at the client's --server;
- frozen: the server was stopped with SIGSTOP (the kernel still accepts the
  connection, nothing answers);
- A, refused upstream: A's --upstream is a port where nothing listens;
- A, frozen upstream: A's upstream B was stopped with SIGSTOP.

Every run starts its servers afresh, so each measures the first discovery.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Dict, List, Tuple

from common import (REPO, Processes, Report, before_tree, free_port, median, run, seconds,
                    tiny_pair, zdir)

SCENARIOS = ("client, refused server", "client, frozen server", "A, refused upstream",
             "A, frozen upstream")


def one(procs: Processes, tree: Path, scenario: str) -> Tuple[float, int]:
    """One run of a scenario from ``tree``: (seconds, exit status)."""
    a_root, b_root = tiny_pair()
    target = f"tcp://127.0.0.1:{free_port()}"
    started = []
    if scenario.endswith("frozen server") or scenario.endswith("frozen upstream"):
        b = procs.node(b_root, "server_b", tree=tree)
        b.proc.send_signal(signal.SIGSTOP)
        target = b.endpoint
        started.append(b)
    if scenario.startswith("A,"):
        a = procs.node(a_root, "server_a", "--upstream", target, tree=tree)
        target = a.endpoint
        started.append(a)
    try:
        result = run(zdir(target), tree=tree, check=(), timeout=120)
    finally:
        for server in started:
            procs.stop(server.proc)
    return result.seconds, result.status


def measure(procs: Processes, report: Report, runs: int) -> None:
    trees = {"after": REPO}
    before = before_tree(report)
    if before is not None:
        trees["before"] = before
    samples: Dict[str, Dict[str, List[float]]] = {w: {s: [] for s in SCENARIOS} for w in trees}
    statuses: Dict[str, Dict[str, int]] = {w: {} for w in trees}
    for _ in range(runs if runs < 3 else 3):  # "before" waits 3-15 s a run
        for scenario in SCENARIOS:
            for when, tree in trees.items():
                elapsed, status = one(procs, tree, scenario)
                samples[when][scenario].append(elapsed)
                statuses[when][scenario] = status
    report.figures["liveness"] = {"samples": samples, "exit": statuses}
    target: Dict[str, float] = {"client, refused server": 1.0, "client, frozen server": 2.5,
                                "A, refused upstream": 1.5, "A, frozen upstream": 2.5}
    for scenario in SCENARIOS:
        after = median(samples["after"][scenario])
        exit_after = statuses["after"][scenario]
        versus, ratio = "", ""
        if "before" in samples:
            was = median(samples["before"][scenario])
            versus = f"before (8d26bf8) {seconds(was)}, exit {statuses['before'][scenario]}"
            ratio = f"{after / was:.2f}x"
        expected = 4 if scenario.startswith("client") else 3
        ok = after <= target[scenario] and exit_after == expected
        report.add("9", f"{scenario}: time to exit {exit_after}", seconds(after), versus, ratio,
                   f"<= {target[scenario]:g} s, exit {expected}", "met" if ok else "MISSED")
