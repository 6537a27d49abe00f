"""The request helper (zdir/reliable.py) connecting and losing peers: refused, mute, slow, lost.

Issue 9's promises: a refused connection or handshake fails at once, a slow peer is
waited for and asked once, a lost one is noticed by the closed connection or by
heartbeats, and a call lost to a peer back within the grace is sent again. The
fake peers and the loop are in tests/linkpeers.py.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest
import zmq

from conftest import unused_tcp_endpoint
from linkpeers import AT_ONCE, DEADLINE, WAIT, answered, ask, expect, expect_ok
from zdir import config
from zdir.exchange import Exchange
from zdir.protocol import ErrorCode
from zdir.reliable import (HANDSHAKE_TIMEOUT_MS, HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS,
                           RECONNECT_GRACE, RECONNECT_IVL_MAX_MS, Call, Link)

pytestmark = pytest.mark.timeout(30)

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

LOST_WITHIN = 1.5  # a closed connection: "within about a second"
FROZEN_WITHIN = 3.0  # heartbeats: HEARTBEAT_IVL + HEARTBEAT_TIMEOUT is 2 s


# -- refused -----------------------------------------------------------------------------------

def test_refused_fails_at_once(loop):
    link = loop.link(unused_tcp_endpoint())
    call, elapsed = loop.call(link)
    expect(call, ErrorCode.UNREACHABLE, "connection refused")
    assert elapsed < AT_ONCE


def test_a_call_long_after_a_refusal_gets_a_fresh_verdict(loop, routers):
    endpoint = unused_tcp_endpoint()
    link = loop.link(endpoint)
    first, _ = loop.call(link)
    expect(first, ErrorCode.UNREACHABLE, "connection refused")
    # Time passing is the scenario, not a synchronisation: a client idle between two
    # calls, while libzmq keeps retrying and nobody reads the monitor.
    time.sleep(2 * RECONNECT_IVL_MAX_MS / 1000)
    answered(loop, link, routers(endpoint))


def test_a_server_started_after_a_refusal_is_used(loop, routers):
    """The loop kept turning (a node): the next call meets the server that came up since."""
    endpoint = unused_tcp_endpoint()
    link = loop.link(endpoint)
    first, _ = loop.call(link)
    expect(first, ErrorCode.UNREACHABLE, "connection refused")
    router = routers(endpoint)
    loop.run_for(RECONNECT_IVL_MAX_MS / 1000 * 2, until=lambda: link.up)
    answered(loop, link, router)


# -- connected, but not a server ---------------------------------------------------------------

def test_a_listener_that_never_speaks_fails_on_the_handshake(loop):
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        listener.settimeout(WAIT)
        link = loop.link("tcp://127.0.0.1:%d" % listener.getsockname()[1])
        call = loop.start(link, deadline=30)
        conn, _ = listener.accept()
        with conn:
            loop.done(call, timeout=HANDSHAKE_TIMEOUT_MS / 1000 + WAIT)
        took = call.elapsed
        expect(call, ErrorCode.TIMEOUT, "handshake")
        assert HANDSHAKE_TIMEOUT_MS / 1000 - 0.2 <= took < HANDSHAKE_TIMEOUT_MS / 1000 + 1.5
    finally:
        listener.close()


# -- slow is not dead --------------------------------------------------------------------------

def test_a_slow_peer_is_waited_for_and_asked_once(loop, routers):
    router = routers()
    link = loop.link(router.endpoint)
    call, identity, request = ask(loop, link, router, deadline=DEADLINE)
    socket_before = link.socket
    # Three seconds of silence but for heartbeats, which libzmq answers on its own.
    loop.run_for(3.0, until=lambda: call.done)
    assert not call.done, call.error and call.error.message
    router.answer(identity, request.id, [b"late but whole"])
    loop.done(call)
    expect_ok(call)
    assert [c.bytes for c in call.chunks] == [b"late but whole"]
    assert router.unread() == 0, "the slow peer was asked twice"
    assert link.socket is socket_before


# -- lost --------------------------------------------------------------------------------------

def test_a_peer_closed_mid_call_is_lost_at_once(loop, routers):
    router = routers()
    link = loop.link(router.endpoint)
    call, _, _ = ask(loop, link, router)
    router.close()
    took = loop.done(call)
    expect(call, ErrorCode.TIMEOUT, "connection was lost")
    assert took < LOST_WITHIN


@POSIX
def test_a_peer_killed_mid_call_is_lost_at_once(loop, peer_process):
    peer = peer_process()
    link = loop.link(peer.endpoint)
    call = loop.start(link)
    loop.sent(call)
    assert peer.line() == "request"
    os.kill(peer.proc.pid, signal.SIGKILL)
    took = loop.done(call)
    expect(call, ErrorCode.TIMEOUT, "connection was lost")
    assert took < LOST_WITHIN


@pytest.mark.parametrize("back_after", [
    0.0,
    RECONNECT_GRACE / 2,
])
def test_a_lost_call_is_sent_again_to_a_peer_back_within_the_grace(loop, routers, back_after):
    router = routers()
    endpoint = router.endpoint
    link = loop.link(endpoint)
    call, _, _ = ask(loop, link, router, retries=1)
    router.close()
    loop.run_for(back_after, until=lambda: call.done)  # the node's loop turns meanwhile
    assert not call.done, call.error and call.error.message
    router = routers(endpoint)
    loop.pump(lambda: call.done or router.sock.poll(0), what="the request sent again",
              also=[router.sock])
    assert not call.done, call.error and call.error.message
    identity, request = router.receive()
    assert request.id == call.id
    router.answer(identity, request.id)
    loop.done(call)
    expect_ok(call)
    assert router.unread() == 0


@POSIX
def test_a_frozen_peer_is_lost_by_heartbeats(loop, peer_process):
    peer = peer_process()
    link = loop.link(peer.endpoint)
    call = loop.start(link, deadline=30)
    loop.sent(call)
    assert peer.line() == "request"
    os.kill(peer.proc.pid, signal.SIGSTOP)
    took = loop.done(call, timeout=FROZEN_WITHIN + WAIT)
    expect(call, ErrorCode.TIMEOUT, "lost", "heartbeats")
    assert took < FROZEN_WITHIN, f"{HEARTBEAT_IVL_MS} + {HEARTBEAT_TIMEOUT_MS} ms promised"


# -- no connection to be had here --------------------------------------------------------------

def test_no_socket_to_be_had_is_this_peers_failure_not_a_crash():
    """Out of ZeroMQ sockets (or descriptors): the call fails for that peer, and says why."""
    context = zmq.Context()
    context.set(zmq.MAX_SOCKETS, 1)
    try:
        filler = context.socket(zmq.PAIR)  # the one socket this context may have
        exchange = Exchange()
        link = Link(context, unused_tcp_endpoint(), max_reply_bytes=config.MAX_REPLY_BYTES)
        exchange.add(link)
        call = Call(b"id", [b"request"], time.monotonic() + DEADLINE)
        assert exchange.start(link, call, time.monotonic()) == [call]
        expect(call, ErrorCode.UNREACHABLE, "cannot open a connection here")
        filler.close(linger=0)
    finally:
        context.destroy(linger=0)
