"""Heartbeats spaced out with the number of upstreams (zdir/reliable.py, heartbeat_ivl_ms).

A handful of links keeps the 2 s promise (500 ms pings, 1500 ms timeout); a node
with hundreds of upstreams sends at most HEARTBEATS_PER_S pings a second over all
of them, each link's timeout three of its intervals. The node test reads the TTL
its link announces in a real ZMTP PING (ZMQ_HEARTBEAT_TTL, in deciseconds).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from conftest import unused_tcp_endpoint
from zmtp import ZmtpPeer
from zdir.reliable import HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS, HEARTBEATS_PER_S, heartbeat_ivl_ms
from zdir.sockets import INLINE_BYTES, SHARED_BUFFER_BYTES, own_memory

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("links", [1, 2, 8, 64, HEARTBEATS_PER_S // 2])
def test_a_handful_of_links_keeps_the_two_second_promise(links: int) -> None:
    assert heartbeat_ivl_ms(links) == HEARTBEAT_IVL_MS


@given(st.integers(min_value=1, max_value=100_000))
def test_a_fleet_sends_at_most_its_budget_of_pings(links: int) -> None:
    ivl = heartbeat_ivl_ms(links)
    assert ivl >= HEARTBEAT_IVL_MS
    assert links * 1000 / ivl <= max(HEARTBEATS_PER_S, 2 * links) * 1.01


@given(st.integers(min_value=1, max_value=100_000))
def test_more_links_never_ping_more_often(links: int) -> None:
    assert heartbeat_ivl_ms(links + 1) >= heartbeat_ivl_ms(links)


def test_small_frames_are_copied_and_large_and_tiny_ones_kept() -> None:
    small, large = zmq.Frame(b"x" * 100), zmq.Frame(b"y" * SHARED_BUFFER_BYTES)
    copied = own_memory(small)
    assert copied is not small and copied.bytes == small.bytes
    assert own_memory(large) is large
    tiny = zmq.Frame(b"z" * (INLINE_BYTES - 1))  # libzmq holds it in the message itself
    assert own_memory(tiny) is tiny


def first_ping_ttl_ms(peer: ZmtpPeer) -> int:
    """The TTL of the first ZMTP PING on the peer's connection (before any request)."""
    while True:
        flags, body = peer._frame()
        if flags & 4 and body.startswith(b"\x04PING"):
            return struct.unpack(">H", body[5:7])[0] * 100


@pytest.mark.parametrize("upstreams", [1, 600])
def test_a_node_spaces_its_links_heartbeats_by_their_number(cluster, tmp_path: Path,
                                                             upstreams: int) -> None:
    peer = ZmtpPeer()
    try:
        # The others refuse at once: 127.x.y.z all loop back, to one port nobody holds.
        port = unused_tcp_endpoint().rsplit(":", 1)[1]
        others = [f"tcp://127.1.{i // 250}.{i % 250 + 1}:{port}" for i in range(upstreams - 1)]
        listed = tmp_path / "upstreams.txt"
        listed.write_text("".join(f"{ep}\n" for ep in [peer.endpoint, *others]))
        root = tmp_path / "root"
        root.mkdir()
        cluster.a(root, args=["--upstreams-file", str(listed), "--log-level", "WARNING"])
        peer.accept()
        expected = heartbeat_ivl_ms(upstreams) * HEARTBEAT_TIMEOUT_MS // HEARTBEAT_IVL_MS
        assert first_ping_ttl_ms(peer) == expected
    finally:
        peer.close()
