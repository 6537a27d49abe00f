"""The one reliable-request helper (the ZeroMQ Guide's Lazy Pirate) for every REQ socket.

Each peer owns one REQ socket. A request is sent to every peer at once and all
replies are awaited through one poller against one deadline. When an attempt
times out its socket is closed with LINGER 0 and a fresh one is opened before any
retry, so a REQ socket is never left waiting for a reply that will not come, and a
late reply dies with the old socket instead of being taken for a new answer. A
socket monitor tells "never connected" (unreachable) from "connected but silent"
(timeout) and from "the CURVE handshake failed" (auth_failed).
"""

from __future__ import annotations

import time
from typing import Callable, List, NamedTuple, Optional, Sequence

import zmq

from .errors import AuthFailed, Unreachable
from .protocol import ErrorCode

DEFAULT_BACKOFF = 0.05  # seconds before the first retry; doubles, capped below
MAX_BACKOFF = 1.0

SocketSetup = Callable[[zmq.Socket], None]
BuildRequest = Callable[[float], List[bytes]]  # attempt budget in seconds -> frames

_MONITORED = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


class Peer:
    """One REQ endpoint. Its socket is opened lazily and replaced after every failure."""

    def __init__(
        self,
        context: zmq.Context,
        endpoint: str,
        *,
        setup: Optional[SocketSetup] = None,
    ) -> None:
        self.context = context
        self.endpoint = endpoint
        self.name = endpoint  # replaced by the peer's own name once it has answered
        self.setup = setup
        self.socket: Optional[zmq.Socket] = None
        self._monitor: Optional[zmq.Socket] = None
        self.connected = False
        self.handshaken = False
        self.handshake_failed = False
        self.hung_up = False  # the peer closed the connection after a handshake

    def open(self) -> zmq.Socket:
        if self.socket is None:
            try:
                self.socket = sock = self.context.socket(zmq.REQ)
                sock.linger = 0
                sock.ipv6 = "[" in self.endpoint  # tcp://[::1]:5555
                if self.setup is not None:
                    self.setup(sock)
                self._monitor = sock.get_monitor_socket(_MONITORED)
                sock.connect(self.endpoint)
            except zmq.ZMQError as exc:
                self.reset()  # a half-made socket would keep the context from terminating
                # The node is stopping. context.socket() says so with a bare ZMQError,
                # which callers that stop on ContextTerminated would take for a bug.
                if exc.errno == zmq.ETERM:
                    raise zmq.ContextTerminated() from exc
                raise
            self.connected = self.handshaken = self.handshake_failed = self.hung_up = False
        return self.socket

    def read_events(self) -> None:
        """Drain the monitor: keep track of whether the peer is there at all."""
        while self._monitor is not None:
            try:
                frames = self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = int.from_bytes(frames[0][:2], "little")
            if event & zmq.EVENT_CONNECTED:
                self.connected = True
            elif event & zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshaken = True
            elif event & _HANDSHAKE_FAILED:
                self.handshake_failed = True
            elif event & zmq.EVENT_DISCONNECTED:
                self.hung_up = self.hung_up or self.handshaken
                self.connected = False

    def failure(self, attempts: int, waited: float) -> Unreachable:
        """Name what went wrong, from what the monitor saw during the last attempt."""
        self.read_events()
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''} ({waited:.1f}s)"
        if self.handshake_failed:
            # A zdir node that refuses our handshake wants CURVE, or other keys.
            hint = "authentication may have failed (or it is not a zdir node)"
            return AuthFailed(
                f"{self.endpoint}: handshake failed {tries}: {hint}",
                endpoint=self.endpoint,
                code=ErrorCode.AUTH_FAILED,
            )
        if self.hung_up:
            return Unreachable(
                f"{self.endpoint}: the server closed the connection without replying {tries} "
                "(it stopped, or the request was over its --max-request-bytes)",
                endpoint=self.endpoint,
                code=ErrorCode.TIMEOUT,
            )
        if self.handshaken or self.connected:
            # Connected without a handshake is a live kernel under a stopped or
            # overloaded process (the kernel accepts for it), not a bad key: a
            # rejected handshake always reports HANDSHAKE_FAILED.
            return Unreachable(
                f"{self.endpoint}: connected but no reply {tries}",
                endpoint=self.endpoint,
                code=ErrorCode.TIMEOUT,
            )
        return Unreachable(
            f"{self.endpoint}: could not connect {tries}",
            endpoint=self.endpoint,
            code=ErrorCode.UNREACHABLE,
        )

    def reset(self) -> None:
        """Throw the socket away (LINGER 0): the Lazy Pirate's cure for a stuck REQ."""
        if self.socket is not None:
            try:
                self.socket.disable_monitor()
            except zmq.ContextTerminated:
                pass  # the node is stopping; closing the socket ends its monitor too
            self.socket.close(linger=0)
            self.socket = None
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None

    close = reset


class Outcome(NamedTuple):
    """One peer's result: reply frames, or the error that ended its attempts."""

    peer: Peer
    frames: Optional[List[zmq.Frame]]
    error: Optional[Unreachable]
    attempts: int
    elapsed: float


class _Attempt:
    __slots__ = ("peer", "number", "ends", "retry_at", "outcome")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.number = 0
        self.ends = 0.0
        self.retry_at: Optional[float] = None
        self.outcome: Optional[Outcome] = None


class Exchange:
    """Send one request to several peers and gather every reply against one deadline.

    ``send()`` starts the first attempts; the caller may do local work; ``wait()``
    polls, retries on fresh sockets with backoff, and returns one Outcome per peer.
    """

    def __init__(
        self,
        peers: Sequence[Peer],
        build: BuildRequest,
        *,
        timeout: float,
        retries: int,
        deadline: Optional[float] = None,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        self.build = build
        self.timeout = timeout
        self.retries = retries
        self.deadline = deadline  # time.monotonic() value, or None for timeout x attempts
        self.backoff = backoff
        self.started = time.monotonic()
        self._attempts = [_Attempt(peer) for peer in peers]

    def send(self) -> None:
        for attempt in self._attempts:
            self._try(attempt, time.monotonic())

    def _try(self, attempt: _Attempt, now: float) -> None:
        budget = self.timeout if self.deadline is None else min(self.timeout, self.deadline - now)
        if budget <= 0:
            self._give_up(attempt, now)
            return
        attempt.number += 1
        attempt.ends = now + budget
        attempt.retry_at = None
        peer = attempt.peer
        sock = peer.open()
        peer.read_events()
        sock.send_multipart(self.build(budget), copy=False)

    def _give_up(self, attempt: _Attempt, now: float) -> None:
        peer = attempt.peer
        error = peer.failure(attempt.number, now - self.started)
        peer.reset()
        attempt.outcome = Outcome(peer, None, error, attempt.number, now - self.started)

    def _expire(self, attempt: _Attempt, now: float) -> None:
        if attempt.number > self.retries:
            self._give_up(attempt, now)
            return
        delay = min(self.backoff * (2 ** (attempt.number - 1)), MAX_BACKOFF)
        if self.deadline is not None and now + delay >= self.deadline:
            self._give_up(attempt, now)
            return
        import logging  # here, not at the top: it is a sixth of the client's start-up time

        logging.getLogger(__name__).debug(
            "no reply from %s on attempt %d; retrying on a fresh socket",
            attempt.peer.endpoint, attempt.number)
        attempt.retry_at = now + delay
        attempt.peer.reset()

    def wait(self) -> List[Outcome]:
        """Block until every peer has answered or given up; one Outcome per peer, in order."""
        while True:
            now = time.monotonic()
            self.advance(now)
            if self.done:
                return self.outcomes()
            waiting = self.sockets()
            timeout_ms = max(0.0, (self.wakes_at() - now) * 1000.0)  # type: ignore[operator]
            if len(waiting) == 1:  # the common case, without building a Poller
                if waiting[0].poll(timeout_ms):
                    self.receive(waiting[0])
                continue
            poller = zmq.Poller()
            for sock in waiting:
                poller.register(sock, zmq.POLLIN)
            for sock, _ in poller.poll(timeout_ms):
                self.receive(sock)

    # The steps of wait(), for a caller that polls these sockets among its own.

    @property
    def done(self) -> bool:
        return all(a.outcome is not None for a in self._attempts)

    def outcomes(self) -> List[Outcome]:
        return [a.outcome for a in self._attempts]  # type: ignore[misc]

    def sockets(self) -> List[zmq.Socket]:
        """The sockets a reply is awaited on now (they change when an attempt is retried)."""
        return [a.peer.socket for a in self._attempts  # type: ignore[misc]
                if a.outcome is None and a.retry_at is None]

    def wakes_at(self) -> Optional[float]:
        """When ``advance`` next has something to do (a timeout or a retry), if ever."""
        wakes = [a.ends if a.retry_at is None else a.retry_at
                 for a in self._attempts if a.outcome is None]
        return min(wakes) if wakes else None

    def advance(self, now: float) -> None:
        """Expire the attempts whose time is up, and retry those whose backoff is over."""
        for attempt in self._attempts:
            if attempt.outcome is not None:
                continue
            if attempt.retry_at is None and now >= attempt.ends:
                self._expire(attempt, now)
            elif attempt.retry_at is not None and now >= attempt.retry_at:
                self._try(attempt, now)

    def receive(self, sock: zmq.Socket) -> None:
        """Take the reply waiting on ``sock``, one of ``sockets()``."""
        for attempt in self._attempts:
            if attempt.outcome is None and attempt.peer.socket is sock:
                frames = sock.recv_multipart(copy=False)
                attempt.outcome = Outcome(
                    attempt.peer, frames, None, attempt.number, time.monotonic() - self.started
                )
                return


def request(peer: Peer, build: BuildRequest, *, timeout: float, retries: int,
            deadline: Optional[float] = None) -> List[zmq.Frame]:
    """One request to one peer; raises Unreachable (or AuthFailed) when every attempt fails."""
    exchange = Exchange([peer], build, timeout=timeout, retries=retries, deadline=deadline)
    exchange.send()
    outcome = exchange.wait()[0]
    if outcome.error is not None:
        raise outcome.error
    return outcome.frames  # type: ignore[return-value]
