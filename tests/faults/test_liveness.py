"""Dead is told from slow by the connection, not by a timer (issue 9): real processes.

Every client here runs with its defaults (a 60 s deadline), so each fast failure
below is the liveness model at work, not a short timeout. Times are read from what
the product reports (the client's "(after Xs)", a source's ``elapsed_ms``) where
they can be, so Python's start-up on a loaded machine does not count against it.
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from conftest import make_tree, run_client, unused_tcp_endpoint
from fleetsim import FleetSim
from zdir import reliable

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

REFUSED_WITHIN = 1.0  # seconds, the promise for "nothing listens"
FROZEN_WITHIN = (reliable.HEARTBEAT_IVL_MS + reliable.HEARTBEAT_TIMEOUT_MS) / 1000 + 0.5


def reported_after(stderr: str) -> float:
    """The client's own account of how long it waited: '... (after 0.3s)'."""
    found = re.search(r"\(after ([0-9.]+)s\)", stderr)
    assert found, stderr
    return float(found[1])


def as_json(*args: str):
    proc = run_client(*args, "--json")
    return proc, (json.loads(proc.stdout) if proc.stdout else None)


def by_endpoint(doc, endpoint: str) -> dict:
    (found,) = [s for s in doc["sources"] if s["endpoint"] == endpoint]
    return found


@pytest.fixture
def roots(tmp_path):
    return (make_tree(tmp_path / "a", {"from_a.txt": "a"}),
            make_tree(tmp_path / "b", {"from_b.txt": "b"}))


def test_a_refused_port_is_exit_4_at_once_with_what_to_do(tmp_path):
    endpoint = unused_tcp_endpoint()
    proc = run_client("--server", endpoint)
    assert proc.returncode == 4
    assert f"{endpoint}: nothing is listening (connection refused): is the server running?" \
        in proc.stderr_text
    assert reported_after(proc.stderr_text) <= REFUSED_WITHIN


def test_a_stopped_b_is_unreachable_at_once_and_a_still_answers(cluster, roots):
    a_root, b_root = roots
    a, b = cluster.chain(a_root, b_root)
    assert run_client("--server", a.endpoint).returncode == 0
    b.stop()
    proc, doc = as_json("--server", a.endpoint)
    assert proc.returncode == 3, proc.stderr_text
    assert [e["name"] for e in doc["entries"]] == ["from_a.txt"]
    gone = by_endpoint(doc, b.endpoint)
    assert gone["error"]["code"] == "unreachable"
    assert "connection refused" in gone["error"]["message"]
    assert gone["elapsed_ms"] <= REFUSED_WITHIN * 1000


def test_a_frozen_a_is_exit_4_within_the_heartbeat_timeout(cluster, roots):
    a_root, b_root = roots
    a, _ = cluster.chain(a_root, b_root)
    a.freeze()
    try:
        proc = run_client("--server", a.endpoint)
    finally:
        a.thaw()
    assert proc.returncode == 4
    assert a.endpoint in proc.stderr_text and "frozen" in proc.stderr_text
    assert reported_after(proc.stderr_text) <= FROZEN_WITHIN
    assert run_client("--server", a.endpoint).returncode == 0  # thawed: served again


def test_a_slow_upstream_is_waited_for_and_asked_once(cluster, tmp_path):
    """A live upstream that takes 8 s: complete with default flags, one request, no retry."""
    with FleetSim(["late"], late_delay=8.0, entries=5) as fleet:
        (node,) = fleet.nodes
        a = cluster.a(make_tree(tmp_path / "a", {"from_a.txt": ""}), node.endpoint)
        proc, doc = as_json("--server", a.endpoint)
        assert proc.returncode == 0, proc.stderr_text
        assert len(doc["entries"]) == 6
        assert by_endpoint(doc, node.endpoint)["elapsed_ms"] >= 8000
        assert fleet.requests[node.name] == 1, "the slow upstream was asked twice"
        assert not fleet.errors


def test_three_hundred_upstreams_on_one_node(cluster, tmp_path):
    """One connection per upstream, no socket per worker: every source, no 'internal'."""
    count = 300
    with FleetSim(["ok"] * count, entries=3) as fleet:
        upstreams = [arg for node in fleet.nodes for arg in ("--upstream", node.endpoint)]
        a = cluster.start("server_a", make_tree(tmp_path / "a", {"own": ""}), *upstreams)
        proc, doc = as_json("--server", a.endpoint)
        assert proc.returncode == 0, proc.stderr_text[-2000:]
        assert len(doc["sources"]) == count + 1 and all(s["ok"] for s in doc["sources"])
        assert len(doc["entries"]) == count * 3 + 1
        if sys.platform.startswith("linux"):
            fds = len(os.listdir(f"/proc/{a.pid}/fd"))
            # A connection, its socket's mailbox and a monitor pair per upstream: a few
            # each, and nothing that grows with the workers.
            assert fds <= 4 * count + 64, f"A holds {fds} fds for {count} upstreams"
