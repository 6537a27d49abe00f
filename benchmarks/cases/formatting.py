"""Issue 13.3: what the client's writers cost for 200,000 entries, against the servers' listing.

The listing is the listing case's 2 x 100,000 entries with metadata, fetched
once from a fresh A -> B (cold: the servers' own part, the larger of A's and B's
``elapsed_ms``, is the comparison) and sorted by name as ``zdir`` does. Each
writer (plain, ``-l``, ``--json``, ``--ndjson``) then formats it to a sink that
discards, in a separate process per checkout: this one, and the one before the
column long format (FORMAT_BEFORE, a git worktree), so both are measured in the
same run on the same entries. The profile of ``-l`` and ``--json`` (cProfile,
by own time) goes to benchmarks/.cache/profile-formatting.txt.
"""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path
from typing import Dict

from common import CACHE, PY, REPO, Processes, Report, big_pair, child_env, seconds

FORMAT_BEFORE = "7d7268e"  # the writers before the long format went by columns
BEFORE_TREE = Path("/tmp/zdir-format-before")
WRITERS = ("plain", "-l", "--json", "--ndjson")
SCRIPT = r"""
import cProfile, io, json, pickle, pstats, sys, time
from zdir import output
try:  # since the split, -l and JSON have modules of their own
    from zdir import jsonformat, longformat
except ImportError:  # FORMAT_BEFORE's tree: every writer in output.py
    jsonformat = longformat = output
from zdir.entries import Entries
from zdir.protocol import SourceStatus
columns, runs, profile = pickle.load(open(sys.argv[1], "rb")), int(sys.argv[2]), sys.argv[3]
entries = Entries(*columns)
# What the paged client hands the writers: batches in the listing order (zdir.pages.Pages).
in_order = type("InOrder", (), {"ordered": True, "batches": staticmethod(entries.batches),
                                "__iter__": lambda self: iter(entries)})()
sources = (SourceStatus("server_a", True, entries=1), SourceStatus("server_b", True, entries=1))
class Sink:
    def write(self, text): pass
    def writelines(self, lines):
        for _ in lines: pass
writers = {
    "plain": lambda: output.write_plain(in_order, Sink(), output.PLAIN, sources),
    "-l": lambda: longformat.write_long(entries, Sink()),
    "--json": lambda: jsonformat.write_json(entries, sources, Sink()),
    "--ndjson": lambda: jsonformat.write_ndjson(entries, sources, Sink()),
}
result = {}
for name, write in writers.items():
    times = []
    for _ in range(runs):
        started = time.process_time()
        write()
        times.append(time.process_time() - started)
    result[name] = sorted(times)[len(times) // 2]
if profile != "-":
    with open(profile, "w") as out:
        for name in ("-l", "--json"):
            profiler = cProfile.Profile()
            profiler.runcall(writers[name])
            out.write(f"==== {name}\n")
            stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
            stats.print_stats(8)
            top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:3]
            result["top " + name] = [f"{fn[2]} {st[2] * 1000:.0f} ms" for fn, st in top]
print(json.dumps(result))
"""


def measure(procs: Processes, report: Report, runs: int) -> None:
    from zdir import Client

    a_dir, b_dir = big_pair()
    a, b = procs.chain(a_dir, b_dir)
    with Client(a.endpoint, timeout=120) as client:
        listing = client.list()
    servers = max(s.elapsed_ms for s in listing.sources) / 1000
    entries = listing.entries
    entries.sort()
    columns = (entries.names, entries.types, entries.sizes, entries.mtimes, entries.modes,
               entries.sources)
    data = CACHE / "formatting.pickle"
    data.write_bytes(pickle.dumps(columns))
    trees: Dict[str, Path] = {"after": REPO}
    if not (BEFORE_TREE / "zdir").exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(BEFORE_TREE),
                        FORMAT_BEFORE], capture_output=True)
    if (BEFORE_TREE / "zdir").exists():
        trees["before"] = BEFORE_TREE
    profile = CACHE / "profile-formatting.txt"
    results = {}
    for when, tree in trees.items():
        out = subprocess.run([PY, "-c", SCRIPT, str(data), str(max(3, runs)),
                              str(profile) if when == "after" else "-"], cwd=tree,
                             env=child_env(tree), capture_output=True, text=True, check=True)
        results[when] = json.loads(out.stdout)
    data.unlink()
    report.figures["formatting"] = {"servers_s": servers, **results}
    for name in WRITERS:
        after = results["after"][name]
        was = f", before {seconds(results['before'][name])}" if "before" in results else ""
        ratio = after / servers
        command = "`zdir`" if name == "plain" else f"`zdir {name}`"
        report.add("13", f"client formatting, 200k entries: {command} (CPU)", seconds(after),
                   f"servers' cold listing {seconds(servers)}{was}", f"{ratio:.2f}x",
                   "far less: <= 0.3x", "met" if ratio <= 0.3 else "MISSED")
    for name in ("-l", "--json"):
        report.note(f"profile of {name} (own time): " + ", ".join(results["after"]["top " + name]))
