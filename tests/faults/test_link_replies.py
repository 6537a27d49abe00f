"""The request helper (zdir/reliable.py) with replies: many calls on one link, over budget, garbage.

Replies are matched to calls by id (out of order, or too late), held within
``max_reply_bytes`` (a flood of frames is cut off and leaves no memory behind),
and a reply that is not one fails its call alone. The fake peers and the loop are
in tests/linkpeers.py.
"""

from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path

import pytest

from linkpeers import AT_ONCE, Loop, answered, ask, expect, expect_ok, zmtp_ask
from zmtp import ZmtpPeer, flood, good_reply, reply_frames
from zdir.protocol import ErrorCode
from zdir.reliable import Link

pytestmark = pytest.mark.timeout(30)

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")

RSS_SLACK_KIB = 64 << 10


# -- many calls on one link ------------------------------------------------------------------

def test_calls_answered_out_of_order_each_get_their_own_reply(loop, routers):
    router = routers()
    link = loop.link(router.endpoint)
    calls = [loop.start(link) for _ in range(8)]
    loop.pump(lambda: all(c.id in link.in_flight for c in calls), what="every call sent")
    asked = [router.receive() for _ in calls]
    assert {request.id for _, request in asked} == {c.id for c in calls}
    for identity, request in reversed(asked):
        router.answer(identity, request.id, [b"for " + request.id])
    loop.pump(lambda: all(c.done for c in calls), what="every reply")
    for call in calls:
        expect_ok(call)
        assert [c.bytes for c in call.chunks] == [b"for " + call.id]
    assert link.in_flight == {}


def test_a_late_reply_is_dropped_and_the_next_call_unharmed(loop, routers):
    router = routers()
    link = loop.link(router.endpoint)
    early, late_to, late_request = ask(loop, link, router, deadline=0.3)
    loop.done(early)
    expect(early, ErrorCode.TIMEOUT, "still working at the deadline")
    socket_before = link.socket
    router.answer(late_to, late_request.id, [b"too late"])
    call = answered(loop, link, router, [b"on time"])
    assert [c.bytes for c in call.chunks] == [b"on time"]
    assert early.header is None and early.chunks == []
    assert link.socket is socket_before, "a late reply is not a reason to reconnect"


# -- replies over the budget, and garbage ----------------------------------------------------

FLOOD_FRAMES = 3_000_000


def test_a_flood_of_empty_frames_is_cut_off(loop, zmtp_peer):
    link = loop.link(zmtp_peer.endpoint)
    call, request = zmtp_ask(loop, link, zmtp_peer)
    data = flood(request.id, FLOOD_FRAMES)
    started = time.monotonic()
    zmtp_peer.send(data)
    del data
    took = time.monotonic() - started + loop.done(call)
    expect(call, ErrorCode.LIMIT_EXCEEDED, "--max-reply-bytes")
    # libzmq hands over no frame of a message before its last one arrived: about 0.8 s
    # here for 3M frames, then the link reads its budget's worth (65,536 frames).
    assert took < 3.0
    _next_call_works(loop, link, zmtp_peer)


def _next_call_works(loop: Loop, link: Link, zmtp_peer: ZmtpPeer) -> None:
    """On a new connection: the rest of the flood died with the old one."""
    call, request = zmtp_ask(loop, link, zmtp_peer)
    zmtp_peer.send(good_reply(request.id))
    loop.done(call)
    expect_ok(call)


def _vm_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/self/status")


def _give_back_free_memory() -> None:
    """Return what earlier tests freed to the system (glibc), for a clean baseline."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


@LINUX
def test_a_flood_of_empty_frames_leaves_no_memory_behind(loop, zmtp_peer):
    link = loop.link(zmtp_peer.endpoint)
    call, request = zmtp_ask(loop, link, zmtp_peer)
    _give_back_free_memory()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from VmRSS
    before = _vm_kib("VmRSS")
    zmtp_peer.send(flood(request.id, FLOOD_FRAMES))
    loop.done(call)
    expect(call, ErrorCode.LIMIT_EXCEEDED)
    _next_call_works(loop, link, zmtp_peer)
    loop.run_for(2.0)  # the old connection's pipe is freed in libzmq's own time
    after, peak = _vm_kib("VmRSS"), _vm_kib("VmHWM")
    assert after - before < RSS_SLACK_KIB, \
        f"RSS {before >> 10} -> {after >> 10} MiB (peak {peak >> 10} MiB)"


def test_a_reply_over_max_reply_bytes_is_cut_off(loop, routers):
    """Many frames over the budget: limit_exceeded. One frame over it is refused by libzmq
    before it is held (ZMQ_MAXMSGSIZE), which drops the connection: the call is lost."""
    router = routers()
    link = loop.link(router.endpoint, max_reply_bytes=1 << 20)
    call, identity, request = ask(loop, link, router)
    router.answer(identity, request.id, [b"x" * (256 << 10)] * 8)
    took = loop.done(call)
    expect(call, ErrorCode.LIMIT_EXCEEDED, "--max-reply-bytes")
    assert took < AT_ONCE
    answered(loop, link, router, [b"x" * 1000])


def test_one_frame_over_max_reply_bytes_is_never_held(loop, routers):
    router = routers()
    link = loop.link(router.endpoint, max_reply_bytes=1 << 20)
    call, identity, request = ask(loop, link, router)
    router.answer(identity, request.id, [b"x" * (2 << 20)])
    took = loop.done(call)
    expect(call, ErrorCode.TIMEOUT, "--max-reply-bytes")
    assert took < AT_ONCE
    answered(loop, link, router, [b"x" * 1000])


@pytest.mark.parametrize("garbage, why", [
    (lambda request_id: [b"not a delimiter", *reply_frames(request_id)], "delimiter"),
    (lambda request_id: [b"", b"\xc1 is never msgpack"], "msgpack"),
    (lambda request_id: [b""], "delimiter"),
], ids=["no-delimiter", "not-msgpack", "delimiter-alone"])
def test_garbage_is_a_bad_reply_and_the_next_call_works(loop, routers, garbage, why):
    router = routers()
    link = loop.link(router.endpoint)
    call, identity, request = ask(loop, link, router)
    router.sock.send_multipart([identity, *garbage(request.id)])
    loop.done(call)
    expect(call, ErrorCode.BAD_REPLY, why)
    answered(loop, link, router)
