"""B killed, frozen, restarted or gone, and A stopped under a waiting client: real processes.

Every test runs A and the client with their defaults unless it says otherwise: a
dead or frozen B must give a partial answer (exit 3) within about the heartbeat
timeout, never a client timeout (exit 4), and the client's deadline never matters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import clean_env, make_tree, run_client, unused_tcp_endpoint, wait_until
from zdir import reliable

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

#: What A may spend on a frozen B: the heartbeat timeout, and one heartbeat interval.
FROZEN_NOTICED_MS = reliable.HEARTBEAT_IVL_MS + reliable.HEARTBEAT_TIMEOUT_MS + 500


def listing(endpoint: str, *args: str):
    """Run the client with --json; the process, its document and its wall time."""
    started = time.monotonic()
    proc = run_client("--server", endpoint, "--json", *args)
    elapsed = time.monotonic() - started
    doc = json.loads(proc.stdout) if proc.stdout else None
    return proc, doc, elapsed


def start_client(endpoint: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zdir.client", "--server", endpoint, "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )


def entry_names(doc) -> set:
    return {e["name"] for e in doc["entries"]}


def source(doc, endpoint: str) -> dict:
    (found,) = [s for s in doc["sources"] if s["endpoint"] == endpoint]
    return found


REQUEST_BYTES = 100  # a forwarded request is larger; a heartbeat is about 10 bytes


def wait_for_a_request_held_at(port: int, before: int) -> None:
    """Block until a request (not only heartbeats) waits unread at a frozen server's PORT."""
    assert wait_until(lambda: bytes_waiting_at(port) >= before + REQUEST_BYTES, timeout=5), \
        "no request reached the frozen server"


def bytes_waiting_at(port: int) -> int:
    """Unread bytes on established TCP connections to PORT: a request a frozen server holds."""
    waiting = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
            waiting += int(fields[4].split(":")[1], 16)
    return waiting


@pytest.fixture
def roots(tmp_path: Path):
    a = make_tree(tmp_path / "a", {"from_a.txt": "a"})
    b = make_tree(tmp_path / "b", {"from_b.txt": "b"})
    return a, b


def test_frozen_b_gives_a_partial_answer_then_a_fresh_one_after_thaw(cluster, roots):
    a_root, b_root = roots
    a, b = cluster.chain(a_root, b_root)
    proc, doc, _ = listing(a.endpoint)
    assert proc.returncode == 0, proc.stderr_text
    b.freeze()

    proc, doc, _ = listing(a.endpoint)
    assert proc.returncode == 3, proc.stderr_text
    assert entry_names(doc) == {"from_a.txt"}
    assert source(doc, b.endpoint)["error"]["code"] == "timeout"
    assert source(doc, b.endpoint)["elapsed_ms"] < FROZEN_NOTICED_MS
    assert b.endpoint in proc.stderr_text and "timeout" in proc.stderr_text

    (b_root / "added_while_frozen.txt").write_text("new")
    b.thaw()
    proc, doc, _ = listing(a.endpoint)
    assert proc.returncode == 0, proc.stderr_text
    # A stale reply (B's answer to the request it held while frozen) could not
    # hold the new file: seeing it proves this is the answer to this request.
    assert entry_names(doc) == {"from_a.txt", "from_b.txt", "added_while_frozen.txt"}
    assert all(s["ok"] for s in doc["sources"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_b_killed_mid_request_then_restarted_on_the_same_port(cluster, roots):
    a_root, b_root = roots
    b_endpoint = unused_tcp_endpoint()
    b = cluster.b(b_root, bind=b_endpoint)
    # A keeps one connection to B: what waits in B's socket below is the request.
    a = cluster.a(a_root, b_endpoint)
    assert listing(a.endpoint)[0].returncode == 0
    b.freeze()  # hold the next request inside B ...
    held = bytes_waiting_at(b.port)
    client = start_client(a.endpoint)
    wait_for_a_request_held_at(b.port, held)
    os.kill(b.pid, signal.SIGKILL)  # ... and kill B while it holds it
    b.proc.wait(5)
    out, err = client.communicate(timeout=30)
    assert client.returncode == 3, err
    doc = json.loads(out)
    assert entry_names(doc) == {"from_a.txt"}
    lost = source(doc, b_endpoint)
    assert lost["error"]["code"] == "timeout" and "connection was lost" in lost["error"]["message"]

    proc, doc, _ = listing(a.endpoint)  # B is simply not there
    assert proc.returncode == 3
    refused = source(doc, b_endpoint)
    assert refused["error"]["code"] == "unreachable" and refused["elapsed_ms"] < 1000
    assert "connection refused" in refused["error"]["message"]
    assert b_endpoint in proc.stderr_text

    cluster.b(b_root, bind=b_endpoint)
    proc, doc, _ = listing(a.endpoint)
    assert proc.returncode == 0, proc.stderr_text + a.log()
    assert entry_names(doc) == {"from_a.txt", "from_b.txt"}
    assert a.proc.poll() is None, "A was never restarted"


def test_four_clients_with_b_frozen_each_wait_one_heartbeat_timeout(cluster, roots):
    a_root, b_root = roots
    a, b = cluster.chain(a_root, b_root)
    assert listing(a.endpoint)[0].returncode == 0  # A's connection to B is up
    b.freeze()
    clients = [start_client(a.endpoint) for _ in range(4)]
    for client in clients:
        out, err = client.communicate(timeout=30)
        assert client.returncode == 3, err
        doc = json.loads(out)
        assert entry_names(doc) == {"from_a.txt"}
        assert source(doc, b.endpoint)["elapsed_ms"] < FROZEN_NOTICED_MS


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_stopping_a_while_a_client_waits_tells_the_client_at_once(cluster, roots):
    a_root, b_root = roots
    a, b = cluster.chain(a_root, b_root)
    assert listing(a.endpoint)[0].returncode == 0
    b.freeze()  # the next request waits for B inside A
    held = bytes_waiting_at(b.port)
    client = start_client(a.endpoint)
    wait_for_a_request_held_at(b.port, held)
    stopped = time.monotonic()
    os.kill(a.pid, signal.SIGTERM)
    assert a.proc.wait(5) == 0
    assert time.monotonic() - stopped < 1.5, "waiting on B delayed the stop"
    assert "Traceback" not in a.log(), a.log()
    out, err = client.communicate(timeout=15)
    told = time.monotonic() - stopped
    assert client.returncode == 4
    message = err.decode()
    assert "connection was lost" in message and a.endpoint in message
    assert told < 2.0, f"the client learnt of it {told:.1f}s after A stopped"


def test_ping_reports_each_upstream_and_exits_like_a_listing(cluster, roots):
    a_root, b_root = roots
    b = cluster.b(b_root, "--name", "bee")
    a = cluster.a(a_root, b.endpoint)
    healthy = run_client("--server", a.endpoint, "--ping")
    assert healthy.returncode == 0, healthy.stderr_text
    a_line, b_line = healthy.stdout_text.splitlines()
    assert a_line.startswith(f"server_a {a.endpoint} ok version=") and "uptime=" in a_line
    assert b_line.startswith(f"bee {b.endpoint} ok version=") and "uptime=" in b_line

    b.freeze()
    frozen = run_client("--server", a.endpoint, "--ping")
    assert frozen.returncode == 3
    a_line, b_line = frozen.stdout_text.splitlines()
    assert a_line.startswith("server_a ") and " ok " in a_line
    assert b.endpoint in b_line and "timeout" in b_line
    assert b.endpoint in frozen.stderr_text
    b.thaw()

    a.stop()
    gone = run_client("--server", a.endpoint, "--ping")
    assert gone.returncode == 4
    assert a.endpoint in gone.stderr_text
