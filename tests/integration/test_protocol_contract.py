"""docs/protocol.md's answers to what an independent implementation asked (issue 11).

Each test pins one sentence of the document against a real node, over raw sockets.
"""

from __future__ import annotations

import os
import time

import msgpack
import pytest
import zmq

from conftest import make_tree
from zdir import chunkframes, protocol

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 10_000
GOOD = {"v": 1, "op": "list", "id": b"contract-id", "path": ""}


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def ask(sock: zmq.Socket, frames: list, *, delimiter: bool = True) -> list:
    sock.send_multipart([b""] * delimiter + list(frames))
    assert sock.poll(WAIT_MS), "no reply"
    reply = sock.recv_multipart()
    return reply[1:] if delimiter else reply


def header(reply: list) -> dict:
    return msgpack.unpackb(reply[0], raw=False)


@pytest.fixture
def chain(cluster, tmp_path):
    a_root = make_tree(tmp_path / "a", {"own": "", ".hidden": {"deep": ""}})
    return cluster.chain(a_root, make_tree(tmp_path / "b", {"theirs": ""}))


@pytest.fixture
def dealer(zmq_context):
    def connect(endpoint: str) -> zmq.Socket:
        sock = zmq_context.socket(zmq.DEALER)
        sock.connect(endpoint)
        return sock
    return connect


@pytest.mark.parametrize("fields, code", [
    ({"op": "delete"}, "unknown_op"),
    ({"v": 2}, "unsupported_version"),
    ({"glob": ["*"] * 65}, "limit_exceeded"),
    ({"all": "yes"}, "bad_request"),
    ({"path": "x" * 4097}, "bad_path"),
    ({"path": "/etc"}, "bad_path"),
])
def test_the_op_is_echoed_whenever_it_could_be_read(chain, dealer, fields, code):
    a, _ = chain
    got = header(ask(dealer(a.endpoint), [pack({**GOOD, **fields})]))
    assert got["ok"] is False and got["error"]["code"] == code
    assert got["op"] == fields.get("op", "list") and got["id"] == GOOD["id"]


def test_the_id_is_echoed_on_badly_framed_requests(chain, dealer):
    a, _ = chain
    extra = header(ask(dealer(a.endpoint), [pack(GOOD), b"extra"]))
    assert (extra["error"]["code"], extra["id"], extra["op"]) == ("bad_request", GOOD["id"], "list")
    bare = header(ask(dealer(a.endpoint), [pack(GOOD)], delimiter=False))
    assert (bare["error"]["code"], bare["id"], bare["op"]) == ("bad_request", GOOD["id"], "list")
    assert "delimiter" in bare["error"]["message"]


def test_a_full_trail_fails_the_upstreams_and_never_the_request(chain, dealer):
    a, b = chain
    trail = [f"relay-{i}" for i in range(protocol.MAX_TRAIL)]
    reply = ask(dealer(a.endpoint), [pack({**GOOD, "trail": trail})])
    got = protocol.decode_reply(reply, GOOD["id"])
    own, upstream = got.sources
    assert own.ok and upstream.endpoint == b.endpoint
    assert upstream.code == "limit_exceeded" and upstream.failed


def test_ping_tells_the_node_id_that_a_relay_puts_in_the_trail(chain, dealer):
    a, b = chain
    ping = protocol.decode_reply(ask(dealer(a.endpoint), [pack({**GOOD, "op": "ping"})]),
                                 GOOD["id"])
    a_id, b_id = (s.node_id for s in ping.sources)
    assert a_id.startswith("server_a-") and b_id.startswith("server_b-") and a_id != b_id
    # A request that has already passed B: B refuses it as a loop, A reports B so.
    reply = ask(dealer(a.endpoint), [pack({**GOOD, "trail": [b_id]})])
    own, upstream = protocol.decode_reply(reply, GOOD["id"]).sources
    assert own.ok and upstream.code == "loop"
    # One that has passed A already is refused whole, by A.
    looped = header(ask(dealer(a.endpoint), [pack({**GOOD, "trail": [a_id]})]))
    assert looped["error"]["code"] == "loop" and looped["op"] == "list"


def test_a_relay_sends_a_fresh_id_once_and_names_an_upstream_refusal(cluster, tmp_path,
                                                                      zmq_context, dealer):
    fake = zmq_context.socket(zmq.ROUTER)  # an upstream the test answers by hand
    fake.bind("tcp://127.0.0.1:*")
    endpoint = fake.getsockopt_string(zmq.LAST_ENDPOINT)
    a = cluster.a(make_tree(tmp_path / "a", {"own": ""}), endpoint)
    client = dealer(a.endpoint)
    client.send_multipart([b"", pack({**GOOD, "deadline_ms": 20_000})])
    assert fake.poll(WAIT_MS)
    peer, empty, body = fake.recv_multipart()
    forwarded = msgpack.unpackb(body, raw=False)
    assert empty == b"" and forwarded["id"] != GOOD["id"]
    assert forwarded["trail"][-1].startswith("server_a-")
    assert 0 < forwarded["deadline_ms"] <= 20_000
    refused = protocol.error_reply(forwarded["id"], "list", "bad_request", "not for me")
    fake.send_multipart([peer, b"", *refused])
    own, upstream = protocol.decode_reply(client.recv_multipart()[1:], GOOD["id"]).sources
    assert upstream.name == endpoint and upstream.code == "bad_request"
    assert upstream.error["message"].startswith(endpoint)
    assert not fake.poll(500), "the upstream was asked again"


def test_a_relay_asks_a_busy_upstream_again_with_the_same_id_until_the_deadline(
        cluster, tmp_path, zmq_context, dealer):
    fake = zmq_context.socket(zmq.ROUTER)
    fake.bind("tcp://127.0.0.1:*")
    endpoint = fake.getsockopt_string(zmq.LAST_ENDPOINT)
    a = cluster.a(make_tree(tmp_path / "a", {"own": ""}), endpoint)
    client = dealer(a.endpoint)
    client.send_multipart([b"", pack({**GOOD, "deadline_ms": 2_000})])
    asked = []
    while not client.poll(0):
        if not fake.poll(100):
            continue
        peer, _, body = fake.recv_multipart()
        asked.append(msgpack.unpackb(body, raw=False)["id"])
        fake.send_multipart([peer, b"", *protocol.error_reply(asked[-1], "list", "busy", "full")])
    own, upstream = protocol.decode_reply(client.recv_multipart()[1:], GOOD["id"]).sources
    assert own.ok and upstream.name == endpoint and upstream.code == "busy"
    # pauses of 50 ms doubling, with jitter, over 2 s: 4 asks at the fewest
    assert len(asked) >= 4 and len(set(asked)) == 1, asked
    assert not fake.poll(500), "nothing is asked after the reply"


def test_deadline_zero_is_answered_at_once(chain, dealer):
    a, _ = chain
    sock = dealer(a.endpoint)
    started = time.monotonic()
    reply = ask(sock, [pack({**GOOD, "deadline_ms": 0})])
    assert time.monotonic() - started < 1.0
    got = protocol.decode_reply(reply, GOOD["id"])
    assert all(s.failed and s.code == "timeout" for s in got.sources)
    ping = protocol.decode_reply(ask(sock, [pack({**GOOD, "op": "ping", "deadline_ms": 0})]),
                                 GOOD["id"])
    assert ping.sources[0].ok and ping.sources[1].code == "timeout"


def test_a_truncated_source_is_ok_with_a_reason(cluster, tmp_path, dealer):
    root = make_tree(tmp_path / "many", {f"f{i}": "" for i in range(5)})
    b = cluster.b(root, "--max-entries", "3")
    got = protocol.decode_reply(ask(dealer(b.endpoint), [pack(GOOD)]), GOOD["id"])
    (source,) = got.sources
    assert source.ok and source.truncated and source.code == "limit_exceeded"
    assert source.entries == 3 and source.failed


def test_hidden_directories_are_not_walked_without_all(chain, dealer):
    a, _ = chain
    sock = dealer(a.endpoint)
    names = []
    for every in (False, True):
        request = {**GOOD, "recursive": True, "all": every, "id": os.urandom(8)}
        reply = ask(sock, [pack(request)])
        protocol.decode_reply(reply, request["id"])
        chunks = [chunkframes.decode_chunk(frame)[1] for frame in reply[1:]]
        names.append(sorted(name for chunk in chunks for name in chunk.names))
    assert names[0] == ["own", "theirs"]
    assert names[1] == [".hidden", ".hidden/deep", "own", "theirs"]
