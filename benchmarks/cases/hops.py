"""Issue 13: a tiny listing through two hops (A -> B) with the Python API, against raw pyzmq.

The floor is two Python processes, each a REP socket (the first relaying to the
second over a REQ socket), asked with a REQ socket: the same topology and the
same request bytes, and no work. Both sides use one connection for every call;
3,000 calls per side per run, in alternating rounds of 100.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Callable, Dict, List

from common import PY, Processes, Report, median, tiny_pair

CALLS = 3000
ROUND = 100
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


def measure(procs: Processes, report: Report, runs: int) -> None:
    import zmq

    from zdir import Client, protocol

    a_root, b_root = tiny_pair()
    a, b = procs.chain(a_root, b_root)
    echo_b = procs.ready([PY, "-c", ECHO])
    echo_a = procs.ready([PY, "-c", ECHO, echo_b.endpoint])
    context = zmq.Context()
    raw = context.socket(zmq.REQ)
    raw.connect(echo_a.endpoint)
    request = protocol.encode_request(protocol.Request("list", os.urandom(8), b"",
                                                       deadline_ms=5000))
    per_run: Dict[str, List[float]] = {"zdir": [], "raw": []}
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

        sides: Dict[str, Callable[[], float]] = {"zdir": ours, "raw": floor}
        for sample in sides.values():
            for _ in range(200):
                sample()
        for _ in range(runs):
            calls: Dict[str, List[float]] = {"zdir": [], "raw": []}
            for _ in range(CALLS // ROUND):
                for name, sample in sides.items():
                    calls[name].extend(sample() for _ in range(ROUND))
            for name in per_run:
                per_run[name].append(median(calls[name]))
        # Where the time goes: CPU per call of the client, A and B over one more round.
        spent = [time.process_time(), cpu_seconds(a.proc), cpu_seconds(b.proc)]
        for _ in range(CALLS):
            ours()
        cpu = [(after - before) / CALLS for before, after in
               zip(spent, [time.process_time(), cpu_seconds(a.proc), cpu_seconds(b.proc)])]
    raw.close(linger=0)
    context.term()
    report.figures["hops"] = {**per_run, "cpu_client_a_b": cpu}
    report.compare("13", "tiny listing, two hops (Python API)", median(per_run["zdir"]),
                   "raw pyzmq two-hop floor", median(per_run["raw"]), 1.5)
    report.note("hops: CPU per tiny listing: client {:.0f} us, A {:.0f} us, B {:.0f} us".format(
        *(c * 1e6 for c in cpu)))


def cpu_seconds(proc: subprocess.Popen) -> float:
    """User and system time the process has used so far (Linux /proc)."""
    with open(f"/proc/{proc.pid}/stat") as stat_file:
        fields = stat_file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
