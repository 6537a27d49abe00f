"""A loop's links over real sockets: what the loop polls follows each link's connection."""

from __future__ import annotations

import time
from typing import Tuple

import pytest
import zmq

from zdir.exchange import Exchange
from zdir.reliable import Call, Link
from zdir.sockets import poll_fd

pytestmark = pytest.mark.timeout(30)


def peer_and_link(context: zmq.Context) -> Tuple[zmq.Socket, Exchange, Link]:
    """A ROUTER peer on a free loopback port, and an exchange with one link to it."""
    peer = context.socket(zmq.ROUTER)
    peer.linger = 0
    port = peer.bind_to_random_port("tcp://127.0.0.1")
    exchange = Exchange()
    link = Link(context, f"tcp://127.0.0.1:{port}", max_reply_bytes=1 << 20)
    exchange.add(link)
    return peer, exchange, link


def test_a_connection_replaced_while_a_call_starts_is_polled_from_then_on(zmq_context):
    # The loop only learns of a new socket from ``Exchange.version``. A call started
    # just after its peer went (the disconnection still unread) makes the link open a
    # new connection inside ``start``; before the fix the loop kept polling the old,
    # closed sockets, and every later call waited for its deadline (tests/faults/test_load.py).
    peer, exchange, link = peer_and_link(zmq_context)
    try:
        deadline = time.monotonic() + 10
        while not link.up and time.monotonic() < deadline:
            if link.monitor.poll(100):
                exchange.handle(link, link.monitor, time.monotonic())
        assert link.up
        peer.close(linger=0)  # the peer goes; the link's monitor says so, unread
        assert link.monitor.poll(10_000), "no event after the peer closed"

        version, old = exchange.version, link.socket
        exchange.start(link, Call(b"id", [b"request"], time.monotonic() + 5), time.monotonic())
        assert link.socket is not old, "the lost connection was replaced"
        assert exchange.version != version, "the loop is told to poll the new socket"
        assert link.socket in exchange.by_socket() and poll_fd(link.monitor) in exchange.by_socket()
    finally:
        exchange.close()


def test_a_monitor_polled_by_its_descriptor_still_wakes_the_loop_after_a_look(zmq_context):
    # Loops poll a link's monitor by its descriptor (sockets.poll_fd), which ZeroMQ
    # signals once per batch of news, not while news waits: whoever looks at the socket
    # (``start`` asks it for events) takes the signal. An event that comes after such
    # a look must still wake the poll, or a lost connection would be noticed only at
    # the deadline.
    peer, exchange, link = peer_and_link(zmq_context)

    def loop_once(timeout_ms: float) -> bool:
        """One turn of a loop over what ``by_socket`` says to poll; whether it woke."""
        owners = exchange.by_socket()
        poller = zmq.Poller()
        for sock in owners:
            poller.register(sock, zmq.POLLIN)
        events = poller.poll(timeout_ms)
        for sock, _ in events:
            exchange.handle(owners[sock], sock, time.monotonic())
        return bool(events)

    try:
        deadline = time.monotonic() + 10
        while not link.up and time.monotonic() < deadline:
            loop_once(100)
        assert link.up
        call = Call(b"id", [b"request"], time.monotonic() + 20)
        assert exchange.start(link, call, time.monotonic()) == []  # it looked: no news
        assert call.id in link.in_flight
        peer.close(linger=0)  # news after the look: the connection is lost
        deadline = time.monotonic() + 10
        while not call.done and time.monotonic() < deadline:
            loop_once(1000)
        assert call.done and call.error is not None, "the loss woke the loop"
        assert "connection was lost" in call.error.message
    finally:
        exchange.close()
