"""The decoders fuzzed without sockets: any input gives a message or a RemoteProtocolError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from zdir import chunkframes, protocol
from zdir.errors import RemoteProtocolError
from zdir.protocol import ErrorCode, Request

from test_protocol import requests as valid  # every field in range

pytestmark = pytest.mark.timeout(120)

CODES = {code.value for code in ErrorCode}
FUZZ = settings(max_examples=300, deadline=None)

scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=30) | st.binary(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=10,
)
#: Maps that look like requests: the real keys with values of any type, plus strangers.
request_like = st.dictionaries(
    st.sampled_from(Request._fields + ("v", "unknown")) | st.text(max_size=5), values, max_size=8
).map(lambda fields: {"v": 1, "op": "list", "id": b"id", **fields})


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def decode_or_refuse(frames) -> "Request | None":
    """The property: a valid Request, or RemoteProtocolError with a known code."""
    try:
        request = protocol.decode_request(frames)
    except RemoteProtocolError as exc:
        assert exc.code in CODES
        assert exc.request_id is None or isinstance(exc.request_id, bytes)
        return None
    protocol.check_request(request)
    assert protocol.decode_request([protocol.encode_request(request)]) == request
    return request


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=3))
@example([b"\xc1"])
@example([b"\xdd\xff\xff\xff\xff"])  # an array header claiming 4 G items
@example([b"\x91" * 100_000])  # nesting deeper than any stack
def test_random_bytes(frames):
    decode_or_refuse(frames)


@FUZZ
@given(values.map(pack))
def test_any_msgpack_value(frame):
    decode_or_refuse([frame])


@FUZZ
@given(request_like.map(pack))
def test_request_shaped_maps_with_any_field_types(frame):
    decode_or_refuse([frame])


@FUZZ
@given(valid, st.data())
def test_mutated_valid_requests(request, data):
    frame = bytearray(protocol.encode_request(request))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(frame) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            frame[position] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del frame[position:]
            if not frame:
                break
        else:
            frame[position:position] = data.draw(st.binary(min_size=1, max_size=8))
    decode_or_refuse([bytes(frame)])


@FUZZ
@given(st.lists(st.binary(max_size=200) | values.map(pack), min_size=1, max_size=3),
       st.binary(min_size=1, max_size=8))
def test_reply_decoders_only_raise_remote_protocol_errors(frames, request_id):
    """A node relays its upstream's bytes: garbage from B must not crash A either."""
    for decode in (protocol.decode_header, chunkframes.decode_chunk):
        try:
            decode(frames[0])
        except RemoteProtocolError:
            pass
    try:
        protocol.decode_reply(frames, request_id)
    except RemoteProtocolError:
        pass
