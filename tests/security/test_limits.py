"""Every resource limit, exceeded across real processes: a clear code, and the server serves on."""

from __future__ import annotations

import json

import msgpack
import pytest
import zmq

from conftest import make_tree, run_client

pytestmark = pytest.mark.timeout(60)


def sources(proc) -> dict:
    return {s["name"]: s for s in json.loads(proc.stdout)["sources"]}


def test_max_entries_truncates_with_limit_exceeded(cluster, tmp_path):
    root = make_tree(tmp_path / "r", {f"f{i}": "x" for i in range(10)})
    b = cluster.b(root, "--max-entries", "4", "--chunk-entries", "3")
    proc = run_client("--server", b.endpoint, "--json", "--page-entries", "0")
    assert proc.returncode == 3
    status = sources(proc)["server_b"]
    assert status["truncated"] and status["entries"] == 4
    assert status["error"]["code"] == "limit_exceeded" and "4 entries" in status["error"]["message"]
    assert len(json.loads(proc.stdout)["entries"]) == 4


def test_max_depth_stops_recursion_with_limit_exceeded(cluster, tmp_path):
    root = make_tree(tmp_path / "r", {"1": {"2": {"3": {"4": "x"}}}})
    b = cluster.b(root, "--max-depth", "2")
    proc = run_client("--server", b.endpoint, "-R")
    assert proc.returncode == 3
    assert proc.stdout_text.split() == ["1", "1/2"]
    assert "limit_exceeded" in proc.stderr_text and "depth limit of 2" in proc.stderr_text


def test_over_long_glob_pattern_is_a_limit_not_a_cost(cluster, tmp_path):
    root = make_tree(tmp_path / "r", {"a": "x"})
    b = cluster.b(root)
    local = run_client("--server", b.endpoint, "--json", "--glob", "x" * 5000)
    assert local.returncode == 2 and "256 characters" in local.stderr_text  # never sent
    with zmq.Context() as context, context.socket(zmq.REQ) as sock:
        sock.linger = 0
        sock.connect(b.endpoint)
        sock.send(msgpack.packb({"v": 1, "op": "list", "id": b"12345678", "glob": ["x" * 5000]},
                                use_bin_type=True))
        assert sock.poll(5000), "no reply to an over-long pattern"
        header = msgpack.unpackb(sock.recv_multipart()[0], raw=False)
    assert header["ok"] is False and header["error"]["code"] == "limit_exceeded"
    assert run_client("--server", b.endpoint).returncode == 0


def test_request_over_max_request_bytes_is_dropped_and_the_server_serves_on(cluster, tmp_path):
    root = make_tree(tmp_path / "r", {"a": "x"})
    b = cluster.b(root, "--max-request-bytes", "512")
    big = run_client("--server", b.endpoint, "--timeout", "1", "--retries", "0",
                     "--glob", "y" * 200, "--glob", "z" * 200, "--glob", "w" * 200)
    assert big.returncode == 4 and b.endpoint in big.stderr_text
    assert "closed the connection" in big.stderr_text
    assert big.stdout == b""
    small = run_client("--server", b.endpoint)
    assert small.returncode == 0 and small.stdout_text.split() == ["a"]

