"""The client's output for a fleet, from the real command: summary, --ping, --source, --compare.

Most tests put a canned node in front of the client: it answers as an A in front
of 1,000 sources would, with exactly the failures a test asks for, so the
expected text is exact. The last ones put a real server_a in front of
tests/fleetsim.py, to check that the same output comes out of a real fleet.
"""

from __future__ import annotations

import json
import threading
from typing import Dict, Iterable, List, Optional, Sequence

import pytest
import zmq

from conftest import STOP_TIMEOUT, run_client
from fleetsim import FleetSim, assign_modes
from zdir import chunkframes, protocol
from zdir.nodeset import expand, fold
from zdir.chunkframes import Chunk
from zdir.protocol import ReplyHeader, SourceStatus

pytestmark = pytest.mark.timeout(60)

NODES = [f"node{i:04d}" for i in range(1, 1001)]
FILES = ["f0000", "f0001", "f0002"]


class CannedNode:
    """A ROUTER in a thread answering every request with the same sources (and listings).

    ``listings`` maps a source name to its entry names; sources that failed have none.
    """

    def __init__(self, sources: Sequence[SourceStatus], listings: Dict[str, List[str]]) -> None:
        self.sources = tuple(sources)
        self.listings = listings
        self.endpoint = ""
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "CannedNode":
        self._thread.start()
        assert self._ready.wait(10), "the canned node did not bind"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(STOP_TIMEOUT)
        assert not self._thread.is_alive(), "the canned node did not stop"

    def _serve(self) -> None:
        context = zmq.Context()
        router = context.socket(zmq.ROUTER)
        try:
            router.bind("tcp://127.0.0.1:*")
            self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
            self._ready.set()
            while not self._stop.is_set():
                if router.poll(50):  # a short poll, so that the stop flag is seen
                    peer, empty, body = router.recv_multipart()
                    router.send_multipart([peer, empty, *self._reply(body)])
        finally:
            router.close(linger=0)
            context.term()

    def _reply(self, body: bytes) -> List[bytes]:
        request = protocol.decode_request([body])
        if request.op == "ping":
            sources = [s._replace(version="0.4.0", uptime_s=9.0) if s.ok else s
                       for s in self.sources]
            return [protocol.encode_header(ReplyHeader(request.id, "ping", True,
                                                       sources=tuple(sources)))]
        chunks = [chunkframes.encode_chunk(name, Chunk(names, "f" * len(names), [1] * len(names),
                                                       [1.7e9] * len(names),
                                                       [0o100644] * len(names)))
                  for name, names in self.listings.items() if names]
        sources = [s._replace(entries=len(self.listings.get(s.name, ()))) for s in self.sources]
        header = ReplyHeader(request.id, "list", True, sources=tuple(sources),
                             chunks=len(chunks))
        return [protocol.encode_header(header), *chunks]


def fleet(failures: Optional[Dict[str, str]] = None,
          listings: Optional[Dict[str, List[str]]] = None) -> CannedNode:
    """server_a (empty) in front of node0001..node1000, each listing FILES unless it failed."""
    failures = failures or {}
    sources = [SourceStatus("server_a", True)]
    for name in NODES:
        code = failures.get(name)
        error = {"code": code, "message": f"{code} (canned)"} if code else None
        sources.append(SourceStatus(name, not code, endpoint=f"tcp://10.0.0.1:{name[4:]}",
                                    error=error))
    if listings is None:
        listings = {name: list(FILES) for name in NODES if name not in failures}
    return CannedNode(sources, listings)


def failed_clause(stderr: str) -> Dict[str, str]:
    """Source name -> code, read back from the summary's 'failed: ...' clause."""
    clause = stderr.split("failed: ", 1)[1].split(";")[0].strip()
    found = {}
    for item in _split_items(clause):
        names, code = item.rsplit(" (", 1)
        for name in expand(names):
            found[name] = code.rstrip(")")
    return found


def _split_items(clause: str) -> Iterable[str]:
    """'a[1-2] (x), b (y)': items end at ') ' outside brackets."""
    return [item if item.endswith(")") else item + ")" for item in clause.split("), ")]


# -- the stderr summary --------------------------------------------------------------------------

def test_two_failures_in_a_thousand_are_one_line(tmp_path):
    with fleet({"node0042": "timeout", "node0777": "unreachable"}) as node:
        proc = run_client("--server", node.endpoint)
    assert proc.returncode == 3
    assert proc.stderr_text == ("zdir: 999 of 1001 sources answered; failed: node0042 (timeout), "
                                "node0777 (unreachable)\n")
    # Each name once, with where it lives (folded): docs/output.md
    assert proc.stdout_text.splitlines() == [
        f"{name}  (node[0001-0041,0043-0776,0778-1000])" for name in sorted(FILES)]


def test_many_failures_are_folded_and_every_one_is_named():
    modes = assign_modes(1000, refuse=100, freeze=10, seed=4)
    failures = {name: {"refuse": "unreachable", "freeze": "timeout"}[mode]
                for name, mode in zip(NODES, modes) if mode != "ok"}
    with fleet(failures) as node:
        proc = run_client("--server", node.endpoint, "--json")
    assert proc.returncode == 3
    (line,) = proc.stderr_text.splitlines()
    assert line.startswith("zdir: 891 of 1001 sources answered; failed: node[")
    assert failed_clause(line) == failures
    assert len(line) < 1200  # folded: 110 names spelt out would be about 1,900 characters
    entries = json.loads(proc.stdout)["entries"]
    assert {e["source"] for e in entries} == set(NODES) - set(failures)


def test_a_healthy_fleet_prints_nothing_on_stderr():
    with fleet() as node:
        proc = run_client("--server", node.endpoint, "-U")
    assert (proc.returncode, proc.stderr_text) == (0, "")
    assert sorted(proc.stdout_text.splitlines()) == [
        f"{name}  (node[0001-1000])" for name in sorted(FILES)]


# -- --ping --------------------------------------------------------------------------------------

def test_ping_is_one_line_per_state_and_verbose_one_per_source():
    failures = {"node0042": "timeout", "node0500": "unreachable", "node0501": "unreachable"}
    with fleet(failures) as node:
        folded = run_client("--server", node.endpoint, "--ping")
        verbose = run_client("--server", node.endpoint, "--ping", "-v")
    assert folded.returncode == verbose.returncode == 3
    assert folded.stdout_text.splitlines() == [
        "ok version=0.4.0  998  node[0001-0041,0043-0499,0502-1000],server_a",
        "timeout             1  node0042",
        "unreachable         2  node[0500-0501]",
    ]
    lines = verbose.stdout_text.splitlines()
    assert len(lines) == 1001 and lines[42].startswith("node0042 tcp://10.0.0.1:0042 timeout")


# -- --source ------------------------------------------------------------------------------------

def test_source_takes_ranges_and_globs():
    with fleet({"node0042": "timeout"}) as node:
        ranged = run_client("--server", node.endpoint, "-l", "--source", "node[0001-0100]")
        globbed = run_client("--server", node.endpoint, "--json", "--source", "node09*",
                             "--source", "server_a")
        wrong = run_client("--server", node.endpoint, "--source", "web*")
    assert ranged.returncode == 3  # node0042 failed: the listing is partial, whatever is shown
    assert {line.split()[-2] for line in ranged.stdout_text.splitlines()} == {
        f"node{i:04d}" for i in range(1, 101) if i != 42}
    assert {e["source"] for e in json.loads(globbed.stdout)["entries"]} == {
        f"node{i:04d}" for i in range(900, 1000)}
    assert wrong.returncode == 3  # a failed source might have been the one: not a usage error


def test_a_selector_that_matches_no_source_lists_them_folded():
    with fleet() as node:
        proc = run_client("--server", node.endpoint, "--source", "web*")
    assert proc.returncode == 2
    assert ("--source web*: no such source here; the sources are node[0001-1000],server_a"
            in proc.stderr_text)


# -- --compare -----------------------------------------------------------------------------------

def test_compare_names_the_shorter_side():
    listings = {name: list(FILES) for name in NODES}
    for name in NODES[:10]:
        listings[name].append("extra")
    listings["node0042"].remove("f0001")
    listings["node0777"].remove("f0001")
    with fleet(listings=listings) as node:
        proc = run_client("--server", node.endpoint, "--compare")
    assert proc.returncode == 0, proc.stderr_text
    rows = [("only on node[0001-0010]", "extra"), ("missing on server_a", "f0000"),
            ("missing on node[0042,0777],server_a", "f0001"), ("missing on server_a", "f0002")]
    width = len(rows[2][0])
    assert proc.stdout_text.splitlines() == [f"{status:<{width}}  {name}" for status, name in rows]


# -- a real server_a in front of the simulator ---------------------------------------------------

def test_a_real_node_in_front_of_a_simulated_fleet(cluster, tmp_path):
    modes = assign_modes(40, refuse=4, freeze=1, garbage=1, seed=2)
    with FleetSim(modes, entries=3) as sim:
        upstreams = [arg for n in sim.nodes for arg in ("--upstream", n.endpoint)]
        root = tmp_path / "a-root"
        root.mkdir()
        a = cluster.a(root, args=upstreams)
        proc = run_client("--server", a.endpoint, "--json")
        ping = run_client("--server", a.endpoint, "--ping")
    assert proc.returncode == 3, proc.stderr_text
    (line,) = proc.stderr_text.splitlines()
    assert line.startswith("zdir: 35 of 41 sources answered; failed: ")
    failed = failed_clause(line)
    bad = sim.by_mode("refuse", "freeze", "garbage")
    # named by the upstreams file's name, or by the endpoint while nothing names them
    assert {n.name if n.name in failed else n.endpoint for n in bad} == set(failed)
    entries = json.loads(proc.stdout)["entries"]
    assert {(e["source"], e["name"]) for e in entries} == {
        (n.name, f) for n in sim.by_mode("ok") for f in FILES}
    states = [row.split()[0] for row in ping.stdout_text.splitlines()]
    assert states[0] == "ok" and len(states) <= 5  # server_a, the nodes, each failure's code
    assert fold(n.name for n in sim.by_mode("ok")) in ping.stdout_text
    assert sim.errors == []
