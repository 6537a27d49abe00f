"""Garbage sent to a real server over raw sockets: an error reply where one is possible,
a dropped message where not, and always the next client served normally."""

from __future__ import annotations

import socket
import sys

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Cluster, make_tree, rss_kib, run_client
from zdir import protocol

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for memory"),
]

REPLY_WAIT_MS = 5000
GOOD = {"v": 1, "op": "list", "id": b"good-id", "path": ""}
HUGE_FRAME = 300 * 1024 * 1024


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A in front of a live B, one pair for the whole module: garbage piles up on one server."""
    tmp_path = tmp_path_factory.mktemp("garbage")
    cluster = Cluster(tmp_path)
    try:
        b = cluster.b(make_tree(tmp_path / "b", {"from_b": "b"}))
        yield cluster.a(make_tree(tmp_path / "a", {"from_a": "a"}), b.endpoint)
    finally:
        cluster.stop_all()


@pytest.fixture
def raw(zmq_context, node):
    """Open DEALER sockets to the node; the test speaks the REQ framing (or not) by hand."""

    def connect(kind: int = zmq.DEALER) -> zmq.Socket:
        sock = zmq_context.socket(kind)
        sock.connect(node.endpoint)
        return sock

    return connect


def ask(sock: zmq.Socket, frames: list, *, delimiter: bool = True):
    """Send FRAMES (after the empty delimiter REQ would add); the reply's frames or None."""
    sock.send_multipart([b""] * delimiter + list(frames))
    if not sock.poll(REPLY_WAIT_MS):
        return None
    reply = sock.recv_multipart()
    if delimiter:
        assert reply[0] == b"", "the reply keeps the REQ framing"
        reply = reply[1:]
    return reply


def header_of(reply) -> protocol.ReplyHeader:
    assert reply, "no reply"
    return protocol.decode_header(reply[0])


def assert_still_serving(node) -> None:
    assert node.proc.poll() is None, f"the server died: {node.log()}"
    proc = run_client("--server", node.endpoint, timeout=30)
    assert proc.returncode == 0, proc.stderr_text
    assert proc.stdout_text.split() == ["from_a", "from_b"]
    assert "Traceback" not in node.log()


@pytest.mark.parametrize(
    "frames, code",
    [
        pytest.param([b"\xc1\x00garbage"], "bad_request", id="not-msgpack"),
        pytest.param([pack([1, 2, 3])], "bad_request", id="array-not-map"),
        pytest.param([pack({**GOOD, "path": 7})], "bad_request", id="wrong-type-path"),
        pytest.param([pack({**GOOD, "recursive": "yes"})], "bad_request", id="wrong-type-flag"),
        pytest.param([pack({**GOOD, "id": "text"})], "bad_request", id="wrong-type-id"),
        pytest.param([pack({**GOOD, "op": "rm"})], "unknown_op", id="unknown-op"),
        pytest.param([pack({**GOOD, "v": 99})], "unsupported_version", id="future-version"),
        pytest.param([pack({k: v for k, v in GOOD.items() if k != "op"})], "bad_request",
                     id="missing-field"),
        pytest.param([pack(GOOD), b"extra"], "bad_request", id="extra-frame"),
        pytest.param([pack(GOOD), pack(GOOD)], "bad_request", id="two-requests"),
        pytest.param([b"", pack(GOOD)], "bad_request", id="second-delimiter"),
        pytest.param([b""], "bad_request", id="empty-frame"),
        pytest.param([pack({**GOOD, "trail": ["x"] * 1000})], "limit_exceeded", id="long-trail"),
        pytest.param([pack({**GOOD, "path": "../../etc"})], "bad_path", id="climbing-path"),
        pytest.param([pack({**GOOD, "deadline_ms": -5})], "bad_request", id="negative-deadline"),
    ],
)
def test_malformed_request_gets_an_error_reply(node, raw, frames, code):
    reply = ask(raw(), frames)
    header = header_of(reply)
    assert header.ok is False and header.code == code, header
    assert_still_serving(node)


def test_unknown_fields_are_ignored(node, raw):
    reply = ask(raw(), [pack({**GOOD, "colour": "blue", "future": {"nested": [1]}})])
    header = protocol.decode_reply(reply, b"good-id")
    assert header.ok and [s.ok for s in header.sources] == [True, True]


def test_missing_frames_get_an_error_reply(node, raw):
    sock = raw()
    sock.send(b"")  # a delimiter and nothing after it
    assert sock.poll(REPLY_WAIT_MS)
    delimiter, header = sock.recv_multipart()
    assert delimiter == b"" and protocol.decode_header(header).code == "bad_request"
    assert_still_serving(node)


def test_dealer_without_delimiter_is_answered_in_its_own_framing(node, raw):
    reply = ask(raw(), [pack(GOOD)], delimiter=False)
    header = header_of(reply)
    assert header.code == "bad_request" and "delimiter" in header.error["message"]
    assert_still_serving(node)


def test_a_300_mib_frame_is_dropped_without_growing_the_server(node, raw):
    before = rss_kib(node.pid)
    sock = raw()
    events = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    sock.send_multipart([b"", bytes(HUGE_FRAME)], copy=False)
    assert events.poll(REPLY_WAIT_MS), "the server cuts a peer that sends an oversized frame"
    assert not sock.poll(0), "an oversized message is dropped, never answered"
    sock.disable_monitor()
    events.close(linger=0)
    sock.close(linger=0)
    assert_still_serving(node)
    grown = rss_kib(node.pid) - before
    assert grown < 20 * 1024, f"A grew by {grown} KiB after a 300 MiB frame"


def test_peers_that_vanish_mid_request_or_mid_handshake(node, raw, zmq_context):
    for _ in range(20):  # the reply goes to a peer that is gone
        sock = raw(zmq.REQ)
        sock.send(pack(GOOD))
        sock.close(linger=0)
    host, port = node.endpoint[len("tcp://"):].rsplit(":", 1)
    for junk in (b"", b"\xff\x00\x00\x00", b"GET / HTTP/1.1\r\n\r\n", b"\xff" + b"\x00" * 8):
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(junk)  # half a greeting, or none, then gone
    assert_still_serving(node)


# -- the server loop, fuzzed -------------------------------------------------------------------

request_fields = st.sampled_from(protocol.Request._fields + ("v", "colour"))
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() \
    | st.text(max_size=20) | st.binary(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
near_requests = st.dictionaries(request_fields, values, max_size=8).map(
    lambda fields: pack({**GOOD, **fields})
)
frames_lists = st.lists(
    st.one_of(st.binary(max_size=200), near_requests, values.map(pack)), min_size=0, max_size=4
)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=frames_lists, delimiter=st.booleans())
def test_fuzzed_frames_never_hurt_the_server(node, raw, frames, delimiter):
    if not frames and not delimiter:
        return  # ZeroMQ cannot send a message of no frames
    sock = raw()
    try:
        reply = ask(sock, frames, delimiter=delimiter)
    finally:
        sock.close(linger=0)
    assert reply is not None, "every message under the size limit gets an answer"
    header = header_of(reply[-1:] if not delimiter else reply)
    if not header.ok:
        assert header.code in {c.value for c in protocol.ErrorCode}
    assert node.proc.poll() is None


def test_memory_is_stable_under_garbage(node, raw):
    sock = raw()
    junk = [[b"\xc1"], [pack([1])], [pack({**GOOD, "path": 1})], [pack(GOOD), b"x"]]
    for _ in range(100):  # warm up allocators and caches
        for frames in junk:
            assert ask(sock, frames) is not None
    before = rss_kib(node.pid)
    for _ in range(1000):
        for frames in junk:
            assert ask(sock, frames) is not None
    grown = rss_kib(node.pid) - before
    assert grown < 4 * 1024, f"A grew by {grown} KiB over 4000 malformed requests"
    assert_still_serving(node)
