"""Fake peers for the one request helper (zdir/reliable.py), and the loop that drives it.

Each test drives a ``Link`` and its ``Exchange`` the way the node's loop does (or
blocks in ``Exchange.wait_for`` the way the client does) against a peer the test
plays by hand: a plain ROUTER in this process, a ROUTER in a child process that can
be frozen or killed, a TCP listener that never speaks, or ZMTP written byte by byte
(to send what no libzmq peer sends quickly; tests/zmtp.py). Used by
tests/faults/test_link_*.py; their fixtures (``loop``, ``routers``, ``peer_process``,
``zmtp_peer``) are in tests/conftest.py.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Optional, Sequence, Tuple

import zmq
from zmq.utils.monitor import recv_monitor_message

from conftest import LOOPBACK_ANY, clean_env, wait_until
from zmtp import ZmtpPeer, reply_frames
from zdir import config, protocol
from zdir.exchange import Exchange
from zdir.reliable import Call, Link

DEADLINE = 10.0  # a call's own deadline: far above every verdict timed below
WAIT = 5.0  # the most a test waits for something that should happen at once
AT_ONCE = 1.0  # issue 9: refused, and refused handshakes, in at most a second


# -- the loop, as node.serve runs it -----------------------------------------------------------


class Loop:
    """An Exchange driven step by step, so the test can play the peer between steps."""

    def __init__(self, context: zmq.Context) -> None:
        self.context = context
        self.exchange = Exchange()

    def link(self, endpoint: str, *, setup=None,
             max_reply_bytes: int = config.MAX_REPLY_BYTES) -> Link:
        link = Link(self.context, endpoint, setup=setup, max_reply_bytes=max_reply_bytes)
        self.exchange.add(link)
        return link

    def start(self, link: Link, *, deadline: float = DEADLINE, retries: int = 0) -> Call:
        """Submit one list request, as Client._call does; the call is not waited for."""
        request_id = os.urandom(8)
        request = protocol.Request("list", request_id, deadline_ms=int(deadline * 1000))
        now = time.monotonic()
        call = Call(request_id, [protocol.encode_request(request)], now + deadline,
                    retries=retries)
        self.exchange.start(link, call, now)
        return call

    def call(self, link: Link, **kwargs) -> Tuple[Call, float]:
        """One call to its end, the client's way (Exchange.wait_for); the call and its time."""
        started = time.monotonic()
        call = self.start(link, **kwargs)
        if not call.done:
            self.exchange.wait_for(call)
        return call, time.monotonic() - started

    def pump(self, until: Callable[[], bool], timeout: float = WAIT, what: str = "",
             also: Sequence[zmq.Socket] = (), wake_at: float = float("inf")) -> None:
        """Run the loop until ``until()``.

        ``also``: the test's sockets that may make it true; ``wake_at``: the time that may.
        """
        ends = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self.exchange.expire(now)
            if until():
                return
            assert now < ends, f"not within {timeout}s: {what}"
            owners = self.exchange.by_socket()
            poller = zmq.Poller()
            for sock in [*owners, *also]:
                poller.register(sock, zmq.POLLIN)
            wake = min(ends, wake_at, self.exchange.next_deadline() or ends)
            for sock, _ in poller.poll(max(0.0, wake - now) * 1000):
                link = owners.get(sock)
                if link is not None:
                    self.exchange.handle(link, sock, time.monotonic())

    def run_for(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Keep the loop turning for a while (a window in which nothing should happen)."""
        ends = time.monotonic() + seconds
        self.pump(lambda: until() or time.monotonic() >= ends, seconds + WAIT, wake_at=ends)

    def sent(self, call: Call) -> None:
        """Run the loop until the call is on the wire (or has failed)."""
        link = call.link
        self.pump(lambda: call.done or call.id in link.in_flight, what="the call sent")

    def done(self, call: Call, timeout: float = WAIT) -> float:
        """Run the loop until the call ends; how long that took."""
        started = time.monotonic()
        self.pump(lambda: call.done, timeout, what="the call's end")
        return time.monotonic() - started


def expect(call: Call, code: str, *words: str) -> str:
    """The call failed with CODE and a message holding every one of WORDS; the message."""
    assert call.done and call.error is not None, f"the call did not fail: {call.header}"
    message = call.error.message
    assert call.error.code == code, message
    for word in words:
        assert word in message, message
    return message


def expect_ok(call: Call) -> None:
    assert call.done and call.error is None, call.error and call.error.message
    assert call.header is not None and call.header.id == call.id


# -- fake peers -----------------------------------------------------------------------------


class Router:
    """A fake peer in this process: a plain ROUTER (no heartbeat options) answered by hand."""

    def __init__(self, context: zmq.Context, endpoint: str = LOOPBACK_ANY, *,
                 secure: Optional[Callable[[zmq.Socket], None]] = None) -> None:
        self.sock = context.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.accepted = self.sock.get_monitor_socket(zmq.EVENT_ACCEPTED)
        if secure is not None:
            secure(self.sock)
        # The port of a ROUTER just closed is freed by libzmq's reaper, a moment later.
        assert wait_until(lambda: self._bind(endpoint), timeout=WAIT), f"cannot bind {endpoint}"
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def _bind(self, endpoint: str) -> bool:
        try:
            self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE:
                raise
            return False
        return True

    def receive(self) -> Tuple[bytes, protocol.Request]:
        """The next request (the caller made sure it was sent): the sender and the request."""
        assert self.sock.poll(WAIT * 1000), "no request reached the fake peer"
        identity, delimiter, *body = self.sock.recv_multipart()
        assert delimiter == b"", "the link must speak REQ's envelope"
        return identity, protocol.decode_request(body)

    def answer(self, identity: bytes, request_id: bytes, chunks: Sequence[bytes] = ()) -> None:
        self.sock.send_multipart([identity, b"", *reply_frames(request_id, chunks)])

    def unread(self) -> int:
        """Messages waiting here now (requests nobody expected)."""
        count = 0
        while self.sock.poll(0):
            self.sock.recv_multipart()
            count += 1
        return count

    def connections(self) -> int:
        """TCP connections accepted since the last look."""
        count = 0
        while self.accepted.poll(0):
            recv_monitor_message(self.accepted)
            count += 1
        return count

    def close(self) -> None:
        self.sock.disable_monitor()
        self.accepted.close(linger=0)
        self.sock.close(linger=0)


def ask(loop: Loop, link: Link, router: Router, **kwargs) -> Tuple[Call, bytes, protocol.Request]:
    """Start a call and take it at the fake peer: the call, its sender and the request."""
    call = loop.start(link, **kwargs)
    loop.sent(call)
    assert not call.done, call.error and call.error.message
    identity, request = router.receive()
    assert request.id == call.id
    return call, identity, request


def answered(loop: Loop, link: Link, router: Router, chunks: Sequence[bytes] = ()) -> Call:
    """A call the fake peer answers at once, run to its end: it must succeed."""
    call, identity, request = ask(loop, link, router)
    router.answer(identity, request.id, chunks)
    loop.done(call)
    expect_ok(call)
    return call


PEER_PROCESS = r"""
import sys, zmq
router = zmq.Context().socket(zmq.ROUTER)
router.linger = 0
router.bind("tcp://127.0.0.1:*")
print(router.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
while True:
    router.recv_multipart()
    print("request", flush=True)  # and never a reply
"""


class PeerProcess:
    """A ROUTER in a child process, to freeze (SIGSTOP) or kill: it never replies."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", PEER_PROCESS], env=clean_env(),
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self._lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.endpoint = self.line()

    def _read(self) -> None:
        for raw in self.proc.stdout:  # type: ignore[union-attr]
            self._lines.put(raw.decode().strip())

    def line(self) -> str:
        try:
            return self._lines.get(timeout=15)  # starting Python on a loaded machine
        except queue.Empty:
            raise AssertionError("the fake peer process said nothing") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(WAIT)


def zmtp_ask(loop: Loop, link: Link, zmtp_peer: ZmtpPeer) -> Tuple[Call, protocol.Request]:
    """Start a call on the link's next connection to the ZMTP peer and take it there."""
    call = loop.start(link)
    zmtp_peer.accept()
    loop.sent(call)
    return call, zmtp_peer.receive()
