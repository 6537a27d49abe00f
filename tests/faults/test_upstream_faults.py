"""B killed, frozen, restarted or gone, and A stopped under a waiting client: real processes.

Every test runs A with its default upstream timeout and retries, and the client
with its defaults unless it says otherwise: the defaults must give a partial
answer (exit 3) before the client gives up, never a client timeout (exit 4).
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
from zdir import config

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

#: What A spends on a silent B by default: every attempt plus the backoff between them.
UPSTREAM_WAIT = config.UPSTREAM_TIMEOUT * (config.UPSTREAM_RETRIES + 1) + 0.05


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

    proc, doc, elapsed = listing(a.endpoint)
    assert proc.returncode == 3, proc.stderr_text
    assert UPSTREAM_WAIT - 0.1 < elapsed < config.CLIENT_TIMEOUT, "partial, never a client timeout"
    assert entry_names(doc) == {"from_a.txt"}
    assert source(doc, b.endpoint)["error"]["code"] == "timeout"
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
    # One worker, so the next request travels on the connection the first one
    # opened: what waits in B's socket below is the request, not a greeting.
    a = cluster.a(a_root, b_endpoint, args=["--workers", "1"])
    assert listing(a.endpoint)[0].returncode == 0
    b.freeze()  # hold the next request inside B ...
    client = start_client(a.endpoint)
    assert wait_until(lambda: bytes_waiting_at(b.port) > 0, timeout=5), "A never asked B"
    os.kill(b.pid, signal.SIGKILL)  # ... and kill B while it holds it
    b.proc.wait(5)
    out, err = client.communicate(timeout=config.CLIENT_TIMEOUT + 5)
    assert client.returncode == 3, err
    doc = json.loads(out)
    assert entry_names(doc) == {"from_a.txt"}
    assert source(doc, b_endpoint)["error"]["code"] in ("timeout", "unreachable")

    proc, doc, elapsed = listing(a.endpoint)  # B is simply not there
    assert proc.returncode == 3 and elapsed < config.CLIENT_TIMEOUT
    assert source(doc, b_endpoint)["error"]["code"] == "unreachable"
    assert b_endpoint in proc.stderr_text

    cluster.b(b_root, bind=b_endpoint)
    proc, doc, _ = listing(a.endpoint)
    assert proc.returncode == 0, proc.stderr_text + a.log()
    assert entry_names(doc) == {"from_a.txt", "from_b.txt"}
    assert a.proc.poll() is None, "A was never restarted"


def test_four_clients_with_b_frozen_wait_one_upstream_timeout_not_four(cluster, roots):
    a_root, b_root = roots
    b = cluster.b(b_root)
    a = cluster.a(a_root, b.endpoint)  # default --workers
    assert config.WORKERS >= 4
    b.freeze()
    started = time.monotonic()
    clients = [start_client(a.endpoint) for _ in range(4)]
    results = [c.communicate(timeout=30) for c in clients]
    elapsed = time.monotonic() - started
    for client, (out, err) in zip(clients, results):
        assert client.returncode == 3, err
        assert entry_names(json.loads(out)) == {"from_a.txt"}
    # Served one after the other they would need 4 x UPSTREAM_WAIT (over 12 s).
    assert elapsed < 2 * UPSTREAM_WAIT, f"four clients took {elapsed:.2f}s"


def test_requests_queued_behind_busy_workers_still_beat_the_client_timeout(cluster, roots):
    a_root, b_root = roots
    b = cluster.b(b_root)
    a = cluster.a(a_root, b.endpoint, args=["--workers", "2"])
    b.freeze()
    started = time.monotonic()
    clients = [start_client(a.endpoint) for _ in range(4)]  # two of them wait for a worker
    results = [c.communicate(timeout=30) for c in clients]
    elapsed = time.monotonic() - started
    assert [c.returncode for c in clients] == [3] * 4, [err for _, err in results]
    # A counts the deadline from arrival, queueing included: the queued requests
    # get what is left of it, answer in time, and no client has to retry.
    assert elapsed < config.CLIENT_TIMEOUT + 1, f"took {elapsed:.2f}s"
    assert a.log().count(" INFO list ") == 4, "a client timed out and asked again"


def test_stopping_a_while_a_client_waits(cluster, roots):
    a_root, b_root = roots
    b = cluster.b(b_root)
    a = cluster.a(a_root, b.endpoint, args=["--log-level", "DEBUG"])
    b.freeze()  # A's worker is now stuck on B
    client = start_client(a.endpoint, "--timeout", "2", "--retries", "1")
    assert wait_until(lambda: "retrying on a fresh socket" in a.log(), timeout=10)
    stopped = time.monotonic()
    os.kill(a.pid, signal.SIGTERM)
    assert a.proc.wait(5) == 0
    assert time.monotonic() - stopped < 1.5, "a worker waiting on B delayed the stop"
    assert "Traceback" not in a.log(), a.log()
    out, err = client.communicate(timeout=15)
    assert client.returncode == 4
    message = err.decode()
    assert "Unreachable" in message and a.endpoint in message
    assert "2 attempts" in message


def test_ping_reports_each_upstream_and_exits_like_a_listing(cluster, roots):
    a_root, b_root = roots
    b = cluster.b(b_root, "--name", "bee")
    a = cluster.a(a_root, b.endpoint, args=["--upstream-timeout", "0.5",
                                           "--upstream-retries", "0"])
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
    gone = run_client("--server", a.endpoint, "--ping", "--timeout", "0.5", "--retries", "0")
    assert gone.returncode == 4
    assert a.endpoint in gone.stderr_text
