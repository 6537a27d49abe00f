"""zdir's benchmarks: each case against its floor or its peers, in one run, as one table.

    .venv/bin/python benchmarks/run.py                 # every case (about 15 minutes)
    .venv/bin/python benchmarks/run.py listing hops    # some of them
    .venv/bin/python benchmarks/run.py --runs 3        # timed runs per figure (median)

The cases live in benchmarks/cases/ (one module each), the shared set-up in
benchmarks/common.py. Every server is started here on loopback and stopped by
pid at the end of its case; peers (nginx, rsync, rclone, GNU time) are installed
with apt-get when missing and this runs as root, or their rows are skipped with
the reason. Figures are medians; ratios compare figures from this same run.
benchmarks/README.md explains each case and records the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases  # noqa: E402
from common import CACHE, PY, REPO, Processes, Report  # noqa: E402

RUNS = 5


def machine() -> str:
    """CPU model, cores, memory, kernel, Python, pyzmq and libzmq: what a figure depends on."""
    model = "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                     if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or model
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) / 1024 ** 2
    import msgpack
    import zmq

    return (f"{os.cpu_count()} cores, {model}, {memory:.0f} GiB; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, pyzmq {zmq.__version__} "
            f"(libzmq {zmq.zmq_version()}), msgpack {'.'.join(map(str, msgpack.version))}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", nargs="*", metavar="CASE",
                        help=f"cases to run (default: all): {', '.join(cases.ORDER)}")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"timed runs per figure "
                                                                f"(default {RUNS})")
    args = parser.parse_args(argv)
    chosen = args.case or list(cases.ORDER)
    unknown = [name for name in chosen if name not in cases.ORDER]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; the cases are {', '.join(cases.ORDER)}")
    sys.path.insert(0, str(REPO))  # the zdir of this checkout, for cases that import it
    CACHE.mkdir(exist_ok=True)
    report = Report()
    command = " ".join(["python benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    header = (f"machine: {machine()}\ncommand: {command}\nzdir's commands run under: {PY}\n"
              f"load before: {os.getloadavg()[0]:.2f} (1-minute average)")
    print(header, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    began = time.monotonic()
    for name in chosen:
        module = cases.ORDER[name]
        print(f"[{name}] {module.__doc__.splitlines()[0]}", flush=True)
        procs = Processes()
        try:
            module.measure(procs, report, args.runs)
        except Exception as exc:  # one broken case must not lose the others' figures
            report.note(f"case {name} failed: {type(exc).__name__}: {exc}")
        finally:
            procs.stop_all()
    print(f"\n{header}\nload after: {os.getloadavg()[0]:.2f}; "
          f"took {time.monotonic() - began:.0f} s\n\n{report.table()}")
    for note in report.notes:
        print(f"note: {note}")
    results = {"machine": machine(), "command": command, "figures": report.figures,
               "rows": [r._asdict() for r in report.rows], "notes": report.notes}
    (CACHE / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
