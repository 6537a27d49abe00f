"""File descriptors: raised at start, refused clearly when short, and not held by idle floods.

Issue 10 item 3: idle connections and half-sent ZMTP greetings used to exhaust a
node's 1,024 descriptors, lock new clients out and spin the CPU.
"""

from __future__ import annotations

import resource
import socket
import sys

import msgpack
import pytest
import zmq

from conftest import make_tree, run_client, wait_until

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

HARD_LIMIT = 1200  # the node needs about 1,100 with no upstreams (docs/security.md)
FLOOD = 1500  # half-sent greetings: more than the node could ever hold at once
IDLE_CLIENTS = 1300  # connected DEALERs that stay: more than the node has descriptors for


def limited(hard: int):
    """For the server's preexec_fn: a soft limit far below the hard one, as on many systems."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    return apply


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def soft_limit(pid: int) -> int:
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files limit")


def test_the_soft_limit_is_raised_and_a_greeting_flood_does_not_lock_clients_out(
        cluster, tmp_path, zmq_context):
    b = cluster.b(make_tree(tmp_path / "b", {"x": ""}), preexec_fn=limited(HARD_LIMIT))
    assert soft_limit(b.pid) == HARD_LIMIT
    known = zmq_context.socket(zmq.DEALER)  # a client connected before the flood
    known.connect(b.endpoint)
    host, port = b.endpoint[len("tcp://"):].rsplit(":", 1)
    flood = []
    try:
        for _ in range(FLOOD):
            try:
                conn = socket.create_connection((host, int(port)), timeout=0.2)
            except OSError:  # the listen backlog is full: the flood has done its worst
                break
            conn.sendall(b"\xff\x00")  # half a ZMTP greeting, then nothing
            flood.append(conn)
        before = cpu_seconds(b.pid)
        known.send_multipart([b"", msgpack.packb({"v": 1, "op": "ping", "id": b"known"},
                                                 use_bin_type=True)])
        assert known.poll(5000), "a connected client was locked out"
        # The handshake timeout (1.5 s) frees every half-open connection's descriptor.
        assert wait_until(lambda: run_client("--server", b.endpoint,
                                             "--timeout", "5").returncode == 0, timeout=20)
        assert cpu_seconds(b.pid) - before < 2.0, "the node spun while out of descriptors"
    finally:
        for conn in flood:
            conn.close()


def test_out_of_descriptors_the_connected_are_served_and_it_is_logged_once(cluster, tmp_path):
    """More idle clients than descriptors: those connected are served, and the condition
    is logged once per interval, not once per failed accept (libzmq retries each at once:
    the CPU cost of that is what the raised limit is for, see docs/security.md)."""
    b = cluster.b(make_tree(tmp_path / "b", {"x": ""}), preexec_fn=limited(HARD_LIMIT))
    context = zmq.Context()
    context.set(zmq.MAX_SOCKETS, 2 * IDLE_CLIENTS)
    try:
        known = context.socket(zmq.DEALER)
        known.linger = 0
        known.connect(b.endpoint)
        assert ping(known, b"before")
        idle = []
        for _ in range(IDLE_CLIENTS):
            sock = context.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(b.endpoint)
            idle.append(sock)
        assert wait_until(lambda: "out of file descriptors" in b.log(), timeout=20), b.log()
        assert ping(known, b"during"), "a connected client was locked out"
        assert ping(known, b"still"), "a connected client was locked out"
        assert b.log().count("out of file descriptors") == 1
    finally:
        context.destroy(linger=0)


def ping(sock: zmq.Socket, request_id: bytes) -> bool:
    sock.send_multipart([b"", msgpack.packb({"v": 1, "op": "ping", "id": request_id},
                                            use_bin_type=True)])
    answered = sock.poll(5000)
    if answered:
        sock.recv_multipart()
    return bool(answered)


def test_too_low_a_hard_limit_is_refused_at_start_naming_it(cluster, tmp_path):
    server = cluster.b(make_tree(tmp_path / "b", {}), preexec_fn=limited(300), wait=False)
    assert server.proc.wait(10) == 2
    assert "file descriptors" in server.log() and "300" in server.log()
