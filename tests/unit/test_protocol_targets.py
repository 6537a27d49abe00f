"""Symlink targets on the wire: asked for with `targets`, carried as a 7th chunk item."""

from __future__ import annotations

import msgpack
import pytest

from zdir import chunkframes, protocol
from zdir.errors import LocalProtocolError, RemoteProtocolError
from zdir.chunkframes import Chunk
from zdir.protocol import Request


def test_targets_travel_only_when_asked():
    plain = msgpack.unpackb(protocol.encode_request(Request("list", b"id")), raw=False)
    assert "targets" not in plain  # nodes that predate the key never see it
    asked = protocol.encode_request(Request("list", b"id", targets=True))
    assert msgpack.unpackb(asked, raw=False)["targets"] is True
    assert protocol.decode_request([asked]).targets is True
    assert protocol.decode_request([protocol.encode_request(Request("list", b"id"))]).targets \
        is False


def test_targets_must_be_a_boolean():
    with pytest.raises(LocalProtocolError):
        protocol.encode_request(Request("list", b"id", targets=1))  # type: ignore[arg-type]
    wire = protocol.pack({"v": 1, "op": "list", "id": b"id", "targets": "yes"})
    with pytest.raises(RemoteProtocolError, match="targets"):
        protocol.decode_request([wire])


def test_a_chunk_without_targets_keeps_six_items():
    frame = chunkframes.encode_chunk("a", Chunk(["x"], "f"))
    assert len(msgpack.unpackb(frame, raw=False)) == 6
    assert chunkframes.decode_chunk(frame) == ("a", Chunk(["x"], "f"))


def test_a_chunk_with_targets_round_trips():
    chunk = Chunk(["latest", "x", b"odd\xff"], "lfl", targets=["x", None, b"t\xff"])
    frame = chunkframes.encode_chunk("a", chunk)
    assert len(msgpack.unpackb(frame, raw=False)) == 7
    assert chunkframes.decode_chunk(frame) == ("a", chunk)


@pytest.mark.parametrize("targets", [["x"], "x", [1, None], {"a": 1}])
def test_bad_targets_are_refused(targets):
    frame = protocol.pack(["a", ["x", "y"], "ff", None, None, None, targets])
    with pytest.raises(RemoteProtocolError, match="targets"):
        chunkframes.decode_chunk(frame)
