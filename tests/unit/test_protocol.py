"""The wire protocol without sockets: round trips, validation, and the name encoding."""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zdir import chunkframes, protocol
from zdir.errors import LocalProtocolError, RemoteProtocolError
from zdir.chunkframes import Chunk
from zdir.protocol import ErrorCode, ReplyHeader, Request, SourceStatus

pytestmark = pytest.mark.timeout(60)

ids = st.binary(min_size=1, max_size=protocol.MAX_REQUEST_ID_BYTES)
names = st.one_of(st.text(max_size=40), st.binary(max_size=40))
requests = st.builds(
    Request,
    op=st.sampled_from(protocol.OPERATIONS),
    id=ids,
    path=st.one_of(st.text(max_size=100), st.binary(max_size=100)),
    all=st.booleans(),
    stat=st.booleans(),
    recursive=st.booleans(),
    max_depth=st.none() | st.integers(0, 1000),
    glob=st.lists(st.text(max_size=10), max_size=5).map(tuple),
    exclude=st.lists(st.text(max_size=10), max_size=5).map(tuple),
    deadline_ms=st.none() | st.integers(0, 10**9),
    trail=st.lists(st.text(max_size=20), max_size=5).map(tuple),
    page_entries=st.none() | st.integers(1, 10**9),
    page_ms=st.none() | st.integers(1, 10**9),
    token=st.none() | st.binary(min_size=1, max_size=64),
    horizon=st.none() | names,
)


@given(requests)
def test_request_round_trip(request):
    assert protocol.decode_request([protocol.encode_request(request)]) == request


def wire(**fields):
    base = {"v": 1, "op": "list", "id": b"12345678"}
    base.update(fields)
    return [msgpack.packb({k: v for k, v in base.items() if v is not ...}, use_bin_type=True)]


@pytest.mark.parametrize(
    "frames, code, words",
    [
        ([b"\xc1"], "bad_request", "not valid msgpack"),
        ([msgpack.packb([1, 2])], "bad_request", "msgpack map"),
        (wire(id="text"), "bad_request", "'id'"),
        (wire(id=...), "bad_request", "'id'"),
        (wire(v=2), "unsupported_version", "version 2"),
        (wire(v="1"), "bad_request", "'v'"),
        (wire(op="delete"), "unknown_op", "delete"),
        (wire(op=...), "bad_request", "incomplete"),
        (wire(path=7), "bad_request", "'path'"),
        (wire(all=1), "bad_request", "'all'"),
        (wire(max_depth=-1), "bad_request", "'max_depth'"),
        (wire(glob="*.txt"), "bad_request", "'glob'"),
        (wire(glob=[1]), "bad_request", "'glob'"),
        (wire(path="x" * 5000), "bad_path", "longer"),
        (wire() + [b"extra"], "bad_request", "exactly one frame"),
        ([], "bad_request", "exactly one frame"),
    ],
)
def test_bad_requests_name_the_problem(frames, code, words):
    with pytest.raises(RemoteProtocolError) as info:
        protocol.decode_request(frames)
    assert info.value.code == code
    assert words in info.value.message


def test_error_keeps_the_request_id_when_it_can():
    with pytest.raises(RemoteProtocolError) as info:
        protocol.decode_request(wire(op="delete"))
    assert info.value.request_id == b"12345678"


def test_unknown_fields_are_ignored_for_forward_compatibility():
    request = protocol.decode_request(wire(future_field={"x": 1}))
    assert request.op == "list"


def test_encoding_refuses_what_decoding_would_refuse():
    with pytest.raises(LocalProtocolError):
        protocol.encode_request(Request("list", b""))


@given(st.lists(names, max_size=50), st.data())
def test_chunk_round_trip(chunk_names, data):
    count = len(chunk_names)
    types = "".join(data.draw(st.lists(st.sampled_from("fdlo"), min_size=count, max_size=count)))
    sizes = data.draw(st.none() | st.lists(st.none() | st.integers(0, 2**63 - 1),
                                           min_size=count, max_size=count))
    chunk = Chunk(chunk_names, types, sizes, None, None)
    assert chunkframes.decode_chunk(chunkframes.encode_chunk("src", chunk)) == ("src", chunk)


@pytest.mark.parametrize("item", [
    ["s", ["a"], "fd", None, None, None],
    ["s", ["a"], "x", None, None, None],
    ["s", ["a"], "f", [1, 2], None, None],
    ["s", [1], "f", None, None, None],
    ["s", ["a"], "f", None, None],
])
def test_bad_chunks_are_refused(item):
    with pytest.raises(RemoteProtocolError):
        chunkframes.decode_chunk(msgpack.packb(item, use_bin_type=True))


def test_reply_round_trip_and_correlation():
    header = ReplyHeader(
        b"id", "list", True, None,
        (SourceStatus("a", True, entries=2), SourceStatus("b", False, "tcp://h:1",
                                                         protocol.error_dict("timeout", "slow"))),
        1,
    )
    frames = [protocol.encode_header(header),
              chunkframes.encode_chunk("a", Chunk(["x", "y"], "ff"))]
    assert protocol.decode_reply(frames, b"id") == header
    with pytest.raises(RemoteProtocolError, match="stale"):
        protocol.decode_reply(frames, b"other")
    with pytest.raises(RemoteProtocolError, match="announces"):
        protocol.decode_reply(frames[:1], b"id")


def test_failed_means_partial_not_refused():
    error = protocol.error_dict
    assert SourceStatus("s", False, error=error("timeout", "")).failed
    assert SourceStatus("s", True, truncated=True).failed
    assert not SourceStatus("s", False, error=error("not_found", "")).failed
    assert not SourceStatus("s", False, error=error("outside_root", "")).failed


def test_error_codes_are_stable_strings():
    assert ErrorCode.NOT_FOUND == "not_found"
    assert str(ErrorCode.LOOP) == "loop"
    assert len({c.value for c in ErrorCode}) == len(ErrorCode)


@given(st.text())
def test_valid_names_travel_as_text(name):
    wire_name = chunkframes.name_to_wire(name)
    assert chunkframes.name_from_wire(wire_name) == name
    msgpack.packb(wire_name, use_bin_type=True)


@given(st.binary(max_size=64))
def test_any_bytes_name_survives_exactly(raw):
    name = raw.decode("utf-8", "surrogateescape")  # as os.scandir gives it on POSIX
    wire_name = chunkframes.name_to_wire(name)
    packed = msgpack.unpackb(msgpack.packb(wire_name, use_bin_type=True), raw=False)
    back = chunkframes.name_from_wire(packed)
    assert back.encode("utf-8", "surrogateescape") == raw
    if os.name == "posix":
        assert os.fsencode(back) == raw
