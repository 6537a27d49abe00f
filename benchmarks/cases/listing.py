"""Issue 13: 2 x 100,000 entries with metadata, cold and repeated, against find, ls -l and nginx.

A lists one directory and B the other (even and odd names, so the merge
interleaves). Every tool runs as a whole process with stdout to /dev/null; two
servers in parallel stand for two hosts. "Cold" zdir: A and B are started
afresh before each run, so neither has the listing cached (the file system's own
caches are warm for every tool alike: a warm-up round runs first). "Repeated":
the same A and B, asked again with nothing changed (the exact, inotify-checked
cache). Runs are interleaved round by round, so drift hits every tool alike.
"""

from __future__ import annotations

import json
import subprocess
from typing import Callable, Dict, List

from common import (Processes, Report, big_pair, both, child_env, ensure_tools, median,
                    run, start_nginx, start_rsyncd, zdir)

FIND_FORMAT = r"%f\t%y\t%s\t%T@\t%m\n"


def measure(procs: Processes, report: Report, runs: int) -> None:
    a_dir, b_dir = big_pair()
    tools = ensure_tools(report, {"nginx": "nginx", "curl": "curl", "rsync": "rsync",
                                  "rclone": "rclone"})
    repeated, _ = procs.chain(a_dir, b_dir)

    def cold(*flags: str) -> Callable[[], float]:
        def once() -> float:
            a, b = procs.chain(a_dir, b_dir)
            try:
                return run(zdir(a.endpoint, *flags)).seconds
            finally:
                procs.stop(a.proc)
                procs.stop(b.proc)
        return once

    def whole(cmd: List[str], shell: bool = False) -> Callable[[], float]:
        return lambda: run(cmd, shell=shell).seconds

    sides: Dict[str, Callable[[], float]] = {
        "zdir --json, cold": cold("--json"),
        "zdir -l, cold": cold("-l"),
        "zdir (names), cold": cold(),
        "zdir --json, repeated": whole(zdir(repeated.endpoint, "--json")),
        "find -printf": whole(["find", str(a_dir), str(b_dir), "-mindepth", "1", "-maxdepth",
                               "1", "-printf", FIND_FORMAT]),
        "GNU ls -l": whole(["ls", "-l", str(a_dir), str(b_dir)]),
    }
    if tools["nginx"] and tools["curl"]:
        root = a_dir.parent
        one = start_nginx(procs, root, "nginx-one")
        two_a, two_b = start_nginx(procs, root, "nginx-a"), start_nginx(procs, root, "nginx-b")
        curl = "curl -sf -o /dev/null"
        sides["nginx, 2 servers"] = whole(both(f"{curl} http://127.0.0.1:{two_a}/a/",
                                               f"{curl} http://127.0.0.1:{two_b}/b/"), True)
        sides["nginx, 1 server"] = whole(both(f"{curl} http://127.0.0.1:{one}/a/",
                                              f"{curl} http://127.0.0.1:{one}/b/"), True)
        check(f"curl -sf http://127.0.0.1:{two_a}/a/; curl -sf http://127.0.0.1:{two_b}/b/",
              '"name"')
    if tools["rsync"]:
        port = start_rsyncd(procs, a_dir, b_dir)
        sides["rsync --list-only"] = whole(both(
            f"rsync --list-only rsync://127.0.0.1:{port}/a/ >/dev/null",
            f"rsync --list-only rsync://127.0.0.1:{port}/b/ >/dev/null"), True)
    if tools["rclone"]:
        conf = a_dir.parent / "rclone.conf"
        conf.write_text(f"[both]\ntype = union\nupstreams = {a_dir} {b_dir}\n")
        sides["rclone lsjson"] = whole(["rclone", "--config", str(conf), "lsjson", "both:"])
    entries = json.loads(subprocess.run(zdir(repeated.endpoint, "--json"), capture_output=True,
                                        env=child_env(), check=True).stdout)["entries"]
    if len(entries) != 2 * len(list(a_dir.iterdir())):
        raise RuntimeError(f"zdir --json listed {len(entries)} entries")
    for sample in sides.values():  # warm-up: page cache, dentries, the repeated chain's cache
        sample()
    samples: Dict[str, List[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, sample in sides.items():
            samples[name].append(sample())
    medians = {name: median(values) for name, values in samples.items()}
    report.figures["listing"] = {"samples": samples, "medians": medians}
    row = report.compare
    find, ls = medians["find -printf"], medians["GNU ls -l"]
    nginx2 = medians.get("nginx, 2 servers")
    row("13", "zdir --json, cold, 2 x 100k", medians["zdir --json, cold"], "find -printf", find,
        1.0)
    if nginx2:
        row("13", "zdir --json, cold, 2 x 100k", medians["zdir --json, cold"],
            "nginx json, 2 servers", nginx2, 1.6)
        row("13", "zdir --json, repeated (default flags)", medians["zdir --json, repeated"],
            "nginx json, 2 servers", nginx2, 0.5)
    row("13", "zdir -l, cold, 2 x 100k", medians["zdir -l, cold"], "GNU ls -l of both", ls, 1.0)
    row("13", "zdir (names only), cold", medians["zdir (names), cold"], "find -printf", find)
    for name in ("nginx, 1 server", "rsync --list-only", "rclone lsjson"):
        if name in medians:
            row("13", f"peer: {name}", medians[name], "zdir --json, cold",
                medians["zdir --json, cold"])


def check(line: str, marker: str) -> None:
    """A peer lists every entry (one that lists nothing would look fast)."""
    out = subprocess.run(line, shell=True, capture_output=True, text=True).stdout
    if out.count(marker) < 2 * 100_000:
        raise RuntimeError(f"{line}: {out.count(marker)} entries")
