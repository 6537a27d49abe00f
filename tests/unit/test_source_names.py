"""A relay's source names (zdir/sourcenames.py) and the chunk renaming they need."""

from __future__ import annotations

import pytest

from zdir import chunkframes, protocol
from zdir.errors import RemoteProtocolError
from zdir.sourcenames import SourceNames


def test_the_first_to_use_a_name_keeps_it_and_the_next_is_told_apart_by_endpoint():
    names = SourceNames("relay")
    first = ("tcp://10.0.0.1:5556", "server_b", "tcp://10.0.0.1:5556", "relay")
    second = ("tcp://10.0.0.2:5556", "server_b", "tcp://10.0.0.2:5556", "relay")
    assert names.shown(first, first[2]) == "server_b"
    assert names.shown(second, second[2]) == "server_b@10.0.0.2:5556"
    # stable: the same source keeps its name, whoever asks first next time
    assert names.shown(second, second[2]) == "server_b@10.0.0.2:5556"
    assert names.shown(first, first[2]) == "server_b"


def test_the_relays_own_name_is_never_given_to_an_upstream():
    names = SourceNames("server_a")
    upstream = ("tcp://b:1", "server_a", "tcp://b:1", "server_a")
    assert names.shown(upstream, "tcp://b:1") == "server_a@b:1"


def test_a_name_taken_even_with_its_endpoint_gets_a_counter_and_stays_short():
    names = SourceNames("relay")
    long_name = "n" * protocol.MAX_SOURCE_NAME
    shown = {names.shown((f"tcp://r{i}:1", long_name, "tcp://same:1", f"r{i}"), "tcp://same:1")
             for i in range(4)}
    assert len(shown) == 4
    assert all(protocol.valid_source_name(name) for name in shown)


def test_a_chunk_is_renamed_without_touching_its_entries():
    chunk = chunkframes.Chunk(["a", b"b\xff"], "fd", [1, None], [2.5, None], [0o644, None])
    frame = chunkframes.encode_chunk("server_b", chunk)
    assert chunkframes.chunk_source(frame)[0] == "server_b"
    renamed = chunkframes.renamed_chunk(frame, "server_b@10.0.0.2:5556")
    assert chunkframes.decode_chunk(renamed) == ("server_b@10.0.0.2:5556",
                                                 chunkframes.decode_chunk(frame)[1])


@pytest.mark.parametrize("frame", [b"", b"\x93\xa1a", b"\x96\x01", b"\xc1"])
def test_a_chunk_that_does_not_start_with_a_source_name_is_refused(frame):
    with pytest.raises(RemoteProtocolError):
        chunkframes.chunk_source(frame)
