"""The fleet simulator (tests/fleetsim.py) against raw sockets: every mode does what it says.

Replies are checked with zdir's own decoders (protocol, chunkframes), so a simulator that drifted
from docs/protocol.md would fail here before it misled a fleet test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import zmq

from conftest import clean_env
from fleetsim import GARBAGE, FleetSim, assign_modes, node_names
from zdir import chunkframes, protocol
from zdir.config import read_upstreams
from zdir.errors import RemoteProtocolError

pytestmark = pytest.mark.timeout(60)

FLEETSIM = Path(__file__).resolve().parents[1] / "fleetsim.py"
WAIT_MS = 5000  # a reply that should come comes well within this
QUIET_MS = 300  # how long a node that should stay silent is watched


@pytest.fixture
def fleet():
    """One node of each mode, in this order, with a short delay for the late one."""
    with FleetSim(["ok", "refuse", "freeze", "late", "garbage"], entries=5,
                  late_delay=1.0) as sim:
        yield sim


def ask(context: zmq.Context, endpoint: str, op: str = "list", **fields) -> zmq.Socket:
    """A REQ socket that has sent one request (id b"fleet-01"); the caller receives."""
    sock = context.socket(zmq.REQ)
    sock.connect(endpoint)
    sock.send(msgpack.packb({"v": 1, "op": op, "id": b"fleet-01", **fields}, use_bin_type=True))
    return sock


def reply(sock: zmq.Socket, timeout_ms: int = WAIT_MS):
    assert sock.poll(timeout_ms), "no reply"
    frames = sock.recv_multipart()
    return protocol.decode_reply(frames, b"fleet-01"), frames[1:]


def test_names_modes_and_endpoints(fleet):
    assert [(n.name, n.mode) for n in fleet.nodes] == [
        ("node0001", "ok"), ("node0002", "refuse"), ("node0003", "freeze"),
        ("node0004", "late"), ("node0005", "garbage")]
    assert all(n.endpoint.startswith("tcp://127.0.0.1:") for n in fleet.nodes)
    assert len({n.endpoint for n in fleet.nodes}) == 5


def test_an_ok_node_lists_its_files_in_one_chunk(fleet, zmq_context):
    header, chunks = reply(ask(zmq_context, fleet.nodes[0].endpoint, deadline_ms=5000))
    assert header.ok and header.chunks == 1 and len(chunks) == 1
    assert [(s.name, s.ok, s.entries) for s in header.sources] == [("node0001", True, 5)]
    source, chunk = chunkframes.decode_chunk(chunks[0])
    assert source == "node0001"
    assert chunk.names == ["f0000", "f0001", "f0002", "f0003", "f0004"]
    assert chunk.types == "fffff" and chunk.sizes == [0, 1, 2, 3, 4]


def test_list_options_names_only_globs_and_other_paths(fleet, zmq_context):
    endpoint = fleet.nodes[0].endpoint
    _, chunks = reply(ask(zmq_context, endpoint, stat=False))
    _, chunk = chunkframes.decode_chunk(chunks[0])
    assert chunk.sizes is chunk.mtimes is chunk.modes is None
    _, chunks = reply(ask(zmq_context, endpoint, glob=["f000[1-3]"], exclude=["f0002"]))
    assert chunkframes.decode_chunk(chunks[0])[1].names == ["f0001", "f0003"]
    header, chunks = reply(ask(zmq_context, endpoint, path="docs"))
    assert header.ok and not chunks and header.sources[0].code == "not_found"


def test_ping_says_name_version_and_uptime(fleet, zmq_context):
    header, chunks = reply(ask(zmq_context, fleet.nodes[0].endpoint, op="ping"))
    (source,) = header.sources
    assert (source.name, source.version, chunks) == ("node0001", "0-fleetsim", [])
    assert source.uptime_s >= 0


def test_bad_requests_are_answered_as_a_node_would(fleet, zmq_context):
    endpoint = fleet.nodes[0].endpoint
    header, _ = reply(ask(zmq_context, endpoint, op="stat"))
    assert (header.ok, header.code) == (False, "unknown_op")
    sock = zmq_context.socket(zmq.REQ)
    sock.connect(endpoint)
    sock.send(msgpack.packb({"v": 2, "op": "list", "id": b"fleet-01"}))
    assert reply(sock)[0].code == "unsupported_version"
    dealer = zmq_context.socket(zmq.DEALER)  # no empty delimiter: answered without one
    dealer.connect(endpoint)
    dealer.send(b"\x80")
    assert dealer.poll(WAIT_MS)
    (frame,) = dealer.recv_multipart()
    assert protocol.decode_header(frame).code == "bad_request"


def test_a_refusing_node_refuses_connections_and_keeps_its_port(fleet):
    port = int(fleet.nodes[1].endpoint.rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", port))  # held: no other program can start listening there


def test_a_frozen_node_accepts_and_never_speaks(fleet, zmq_context):
    port = int(fleet.nodes[2].endpoint.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"\xff" + b"\0" * 8 + b"\x7f")  # the start of a ZMTP greeting
        raw.settimeout(QUIET_MS / 1000)
        with pytest.raises(socket.timeout):
            raw.recv(1)
    sock = ask(zmq_context, fleet.nodes[2].endpoint)
    assert not sock.poll(QUIET_MS)


def test_a_late_node_answers_ping_at_once_and_list_after_its_delay(fleet, zmq_context):
    endpoint = fleet.nodes[3].endpoint
    began = time.monotonic()
    listing = ask(zmq_context, endpoint)
    header, _ = reply(ask(zmq_context, endpoint, op="ping"))  # while the list is held back
    assert header.sources[0].name == "node0004"
    assert time.monotonic() - began < fleet.late_delay
    header, chunks = reply(listing)
    assert time.monotonic() - began >= fleet.late_delay
    assert header.sources[0].entries == 5 and len(chunks) == 1
    assert header.sources[0].elapsed_ms == fleet.late_delay * 1000
    assert fleet.requests["node0004"] == 2  # one list, one ping: nothing sent twice


def test_a_garbage_node_answers_with_bytes_that_are_not_msgpack(fleet, zmq_context):
    sock = ask(zmq_context, fleet.nodes[4].endpoint)
    assert sock.poll(WAIT_MS)
    frames = sock.recv_multipart()
    assert frames == [GARBAGE]
    with pytest.raises(RemoteProtocolError):
        protocol.decode_reply(frames, b"fleet-01")


def test_the_upstreams_file_reads_back_with_the_zdir_parser(fleet, tmp_path):
    path = tmp_path / "fleet.txt"
    fleet.write_upstreams(str(path))
    assert [(u.endpoint, u.name) for u in read_upstreams(str(path))] == [
        (n.endpoint, n.name) for n in fleet.nodes]
    fleet.write_upstreams(str(path), fleet.by_mode("ok", "late"))
    assert [u.name for u in read_upstreams(str(path))] == ["node0001", "node0004"]
    assert fleet.errors == []


def test_modes_are_scattered_reproducibly():
    modes = assign_modes(1000, refuse=100, freeze=10, late=3, garbage=2, seed=1)
    assert modes == assign_modes(1000, refuse=100, freeze=10, late=3, garbage=2, seed=1)
    assert [modes.count(m) for m in ("ok", "refuse", "freeze", "late", "garbage")] == [
        885, 100, 10, 3, 2]
    assert modes[:100].count("refuse") < 50  # not all in one block
    assert node_names(3) == ["node0001", "node0002", "node0003"]
    assert node_names(10_000)[-1] == "node10000"
    with pytest.raises(ValueError):
        assign_modes(3, refuse=4)


def test_a_thousand_nodes_in_one_process(zmq_context):
    modes = assign_modes(1000, refuse=100, freeze=10)
    with FleetSim(modes, entries=3) as fleet:
        assert len(fleet.nodes) == 1000 and len({n.endpoint for n in fleet.nodes}) == 1000
        sockets = [ask(zmq_context, n.endpoint, op="ping") for n in fleet.by_mode("ok")[::40]]
        for sock in sockets:
            assert reply(sock)[0].sources[0].version == "0-fleetsim"
        assert fleet.errors == []


def test_the_command_writes_the_file_prints_ready_and_stops_on_sigterm(tmp_path):
    path = tmp_path / "fleet.txt"
    proc = subprocess.Popen(
        [sys.executable, str(FLEETSIM), "--nodes", "6", "--refuse", "2", "--freeze", "1",
         "--entries", "4", "--upstreams-file", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        line = proc.stdout.readline()
        assert line.startswith("fleetsim ready nodes=6 ok=3 refuse=2 freeze=1 late=0 garbage=0"), (
            line + proc.stderr.read() if not line else line)
        upstreams = read_upstreams(str(path))
        assert [u.name for u in upstreams] == node_names(6)
        assert path.read_text().count("# refuse") == 2
        proc.send_signal(signal.SIGTERM if os.name != "nt" else signal.CTRL_C_EVENT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
