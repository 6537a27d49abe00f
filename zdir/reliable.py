"""Links to peers whose liveness is observed, not guessed: the one request helper of zdir.

Every outgoing request (the client's to its server, a node's to its upstreams) goes
over a ``Link``: one DEALER socket per peer that speaks REQ's envelope (an empty
delimiter frame, then the request), so that any number of requests can be in flight
on one connection, matched to their replies by the request ``id``. Dead and slow are
told apart by what ZeroMQ sees on the connection, not by a timer:

- **refused**: a connection attempt ended before any TCP connection was made
  (``EVENT_CONNECT_RETRIED`` with no ``EVENT_CONNECTED`` since): nothing listens.
- **handshake failed**: the ZMTP/CURVE handshake failed; the event says which CURVE
  mistake it was. Not retried on its own: nothing would change.
- **lost**: an established connection stopped answering ZMTP heartbeats (a frozen
  process, a cut link), or the peer closed it.
- **slow**: connected and answering heartbeats: waited for until the caller's deadline,
  however long that is, and never asked twice.

A call on a link that is not up waits for the link's next verdict: up (the call is
sent), refused or handshake failed (the call fails at once). A call in flight fails at
once when its connection is lost (or is re-sent, if the caller allows retries, to a
connection that comes back within ``RECONNECT_GRACE``), and at its deadline otherwise.
A reply is read frame by frame against a byte budget, so a hostile peer cannot make
us hold more than ``max_reply_bytes`` of it.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import zmq

from . import protocol
from .errors import AuthFailed, RemoteProtocolError, Unreachable
from .lograte import RateLimitedLog
from .protocol import ErrorCode
from .sockets import own_memory, send_frames, watch

log = logging.getLogger(__name__)
_peer_log = RateLimitedLog(log)  # what a peer can make us say over and over

# ZMTP liveness on every zdir socket (docs/protocol.md, "Liveness"): a peer that sends
# nothing, not even a heartbeat, for HEARTBEAT_TIMEOUT is dead, so a frozen process or
# a cut link is known within about HEARTBEAT_IVL + HEARTBEAT_TIMEOUT (2 s). A node with
# more than HEARTBEATS_PER_S / 2 upstreams spaces its heartbeats out (heartbeat_ivl_ms).
HEARTBEAT_IVL_MS = 500
HEARTBEAT_TIMEOUT_MS = 1500
HEARTBEATS_PER_S = 500  # pings a second over all of one node's links, at most
# A connected peer that never completes the handshake: silent as long as a dead one.
HANDSHAKE_TIMEOUT_MS = HEARTBEAT_TIMEOUT_MS
CONNECT_TIMEOUT_MS = 2000  # a TCP connect that is neither accepted nor refused
RECONNECT_IVL_MS = 100  # libzmq retries a connection after this, doubling ...
RECONNECT_IVL_MAX_MS = 500  # ... up to this: the longest a call waits for a verdict
RECONNECT_GRACE = 1.0  # seconds a retried call waits for a lost connection to come back
HANDSHAKE_RETRY_AFTER = 10.0  # seconds before a refused handshake is tried again
# Each reply frame costs at least this much of a link's byte budget, so a flood of
# tiny frames is cut off as soon as a few large ones would be.
FRAME_COST = 4096
REOPEN_AFTER = 1.0  # seconds before a link that could not open a socket tries again
READ_BATCH = 64  # replies read from one link before the loop looks at its other sockets

SocketSetup = Callable[[zmq.Socket], None]

_EVENTS = (zmq.EVENT_CONNECT_DELAYED | zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED
           | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
           | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
           | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_MECHANISM_MISMATCH = 0x11000002  # ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
_SOCKET_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)


def heartbeat_ivl_ms(links: int) -> int:
    """The heartbeat interval of each of ``links`` links held by one node.

    Pings and pongs cost the I/O threads of both ends: 1,000 links at 500 ms took 6 %
    of a core on the node and 3 % on the peers, idle (benchmarks/README.md, "Fleet").
    So a node's links send at most HEARTBEATS_PER_S pings a second together: up to
    250 links keep HEARTBEAT_IVL_MS; beyond, a frozen peer is noticed later.
    """
    return max(HEARTBEAT_IVL_MS, links * 1000 // HEARTBEATS_PER_S)


def tune(sock: zmq.Socket, heartbeat_ms: int = HEARTBEAT_IVL_MS) -> None:
    """The liveness options every zdir socket carries, listening sockets included;
    the heartbeat timeout keeps its ratio to the interval (three of them)."""
    timeout_ms = heartbeat_ms * HEARTBEAT_TIMEOUT_MS // HEARTBEAT_IVL_MS
    sock.linger = 0
    sock.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, timeout_ms)
    sock.setsockopt(zmq.HEARTBEAT_TTL, timeout_ms)
    sock.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_TIMEOUT_MS)


class Failure(NamedTuple):
    """Why a link is down: a protocol error code, a sentence, and whether to stop trying."""

    code: str
    message: str
    lasting: bool = False  # a refused handshake: the socket is closed for a while

    def error(self, endpoint: str, elapsed: float) -> Unreachable:
        kind = AuthFailed if self.code == ErrorCode.AUTH_FAILED else Unreachable
        return kind(f"{endpoint}: {self.message} (after {elapsed:.1f}s)", endpoint=endpoint,
                    code=self.code)


def handshake_failure(event: int, value: int, curve: bool, timed_out: bool) -> Failure:
    """Name a failed handshake as precisely as ZeroMQ lets us (docs/security.md).

    ``timed_out``: the handshake had run for ``HANDSHAKE_TIMEOUT_MS`` (the event's
    value is only the I/O thread's last errno, so time says it better).
    """
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return Failure(ErrorCode.AUTH_FAILED,
                       "the server refused this client's key (it is not in the server's "
                       "--curve-allow directory): add this client's public key file there",
                       lasting=True)
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == _MECHANISM_MISMATCH:
        if curve:
            return Failure(ErrorCode.AUTH_FAILED,
                           "the server does not use CURVE, but --server-key was given: "
                           "drop --server-key, or start the server with --curve-secret",
                           lasting=True)
        return _CURVE_REQUIRED
    if timed_out:
        return Failure(ErrorCode.TIMEOUT,
                       f"connected, but no handshake within {HANDSHAKE_TIMEOUT_MS / 1000:g}s: "
                       "the server is frozen or overloaded, or is not a ZeroMQ server")
    if curve:
        # A server with other keys and a server without CURVE both just hang up.
        return Failure(ErrorCode.AUTH_FAILED,
                       "the server closed the CURVE handshake: its public key does not match "
                       "--server-key, or it does not use CURVE at all", lasting=True)
    # Either side may notice first that the mechanisms differ, and a server that requires
    # CURVE hangs up on us; so may anything else that resets the connection.
    return Failure(ErrorCode.UNREACHABLE,
                   "the server closed the connection during the handshake: if it requires "
                   "CURVE, give its public key file with --server-key")


_CURVE_REQUIRED = Failure(ErrorCode.AUTH_FAILED, "the server requires CURVE: give its public "
                          "key file with --server-key", lasting=True)


class Call:
    """One request in flight: its id and frames, its deadline, and in the end its outcome."""

    __slots__ = ("id", "frames", "deadline", "started", "retries", "link", "give_up_at",
                 "header", "chunks", "error", "done", "owner", "busy_answers")

    def __init__(self, request_id: bytes, frames: List[bytes], deadline: float, *,
                 retries: int = 0, owner: Any = None) -> None:
        self.id = request_id
        self.frames = frames
        self.deadline = deadline  # time.monotonic()
        self.started = time.monotonic()
        self.retries = retries
        self.owner = owner  # the caller's, e.g. the node's request this call serves
        self.link: Optional[Link] = None
        self.give_up_at: Optional[float] = None  # a retried call: the lost link's grace
        self.header: Optional[protocol.ReplyHeader] = None
        self.chunks: List[zmq.Frame] = []
        self.error: Optional[Unreachable] = None
        self.done = False
        self.busy_answers = 0  # "busy" replies so far: the call was sent again after each

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __lt__(self, other: "Call") -> bool:  # for the deadline heap
        return self.deadline < other.deadline


class Link:
    """One connection to one peer (a DEALER speaking REQ's envelope) and its calls."""

    def __init__(self, context: zmq.Context, endpoint: str, *, name: Optional[str] = None,
                 setup: Optional[SocketSetup] = None, max_reply_bytes: int,
                 heartbeat_ms: int = HEARTBEAT_IVL_MS) -> None:
        self.context = context
        self.endpoint = endpoint
        self.heartbeat_ms = heartbeat_ms  # see heartbeat_ivl_ms
        self.name = name or endpoint  # replaced by the peer's own name once it has answered
        self.behind = 0  # sources in the peer's last reply: itself and all behind it
        self.setup = setup
        self.curve = setup is not None
        self.max_reply_bytes = max_reply_bytes
        self.socket: Optional[zmq.Socket] = None
        self.monitor: Optional[zmq.Socket] = None
        self.up = False
        self.failure: Optional[Failure] = None  # why it is down, once known
        self.closed_until = 0.0  # after a refused handshake: not reopened before then
        self._tcp = False  # a TCP connection was made since libzmq last scheduled a retry
        self._delayed_at: Optional[float] = None  # a connection attempt began
        self._connected_at = 0.0  # the last TCP connection was made (its handshake began)
        self.waiting: List[Call] = []  # for the link's next verdict
        self.in_flight: Dict[bytes, Call] = {}
        self.open()

    # -- the socket -------------------------------------------------------------------------

    def open(self) -> None:
        """A fresh socket and monitor: a new connection, nothing queued from the old one.

        When no socket can be had (out of descriptors or ZeroMQ sockets), the link is
        down for ``REOPEN_AFTER``: its calls fail as this peer's failure, nothing more.
        """
        sock = monitor = None
        try:
            sock = self.context.socket(zmq.DEALER)
            tune(sock, self.heartbeat_ms)
            sock.setsockopt(zmq.IMMEDIATE, 1)  # queue nothing for a connection not yet made
            # Calls in flight are bounded by the caller (a node's queue, the client's one
            # call), so a send to a live connection never has to wait; one frame over the
            # reply budget is refused by libzmq before it is held.
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, self.max_reply_bytes)
            sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
            sock.setsockopt(zmq.CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS)
            sock.ipv6 = "[" in self.endpoint  # tcp://[::1]:5555
            if self.setup is not None:
                self.setup(sock)
            monitor = watch(sock, _EVENTS)
            sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            for made in (monitor, sock):
                if made is not None:
                    made.close(linger=0)
            if exc.errno == zmq.ETERM:  # the process is stopping; callers stop on this
                raise zmq.ContextTerminated() from exc
            self.socket = self.monitor = None
            self.up = False
            self.failure = Failure(ErrorCode.UNREACHABLE,
                                   f"cannot open a connection here: {exc.strerror} (out of "
                                   "file descriptors or sockets?)")
            self.closed_until = time.monotonic() + REOPEN_AFTER
            _peer_log.error(("open", exc.errno), "%s: %s", self.endpoint, self.failure.message)
            return
        self.socket, self.monitor = sock, monitor
        self.up = self._tcp = False
        self._delayed_at = None

    def close(self) -> None:
        """Close the socket and its monitor (LINGER 0): whatever is queued is dropped."""
        if self.socket is not None:
            try:
                self.socket.disable_monitor()
            except zmq.ZMQError:
                pass  # the context is terminating: closing ends the monitor too
            self.socket.close(linger=0)
            self.socket = None
        if self.monitor is not None:
            self.monitor.close(linger=0)
            self.monitor = None
        self.up = False

    def reset(self) -> None:
        """A new connection, e.g. after a reply we could not trust."""
        self.close()
        self.open()

    # -- calls ------------------------------------------------------------------------------

    def submit(self, call: Call, now: float) -> bool:
        """Send the call, or keep it for the next verdict; False if it failed at once."""
        call.link = self
        if self.socket is None:  # closed after a refused handshake, or could not be opened
            if now < self.closed_until:
                self._fail(call, self.failure)  # type: ignore[arg-type]
                return False
            self.open()
            if self.socket is None:
                self._fail(call, self.failure)  # type: ignore[arg-type]
                return False
        if self.up:
            self._send(call)
        else:
            self.waiting.append(call)
        return True

    def _send(self, call: Call) -> None:
        try:
            send_frames(self.socket, [b"", *call.frames], _NOBLOCK)  # type: ignore[arg-type]
        except zmq.Again:  # the connection went between the verdict and now
            self.waiting.append(call)
            return
        self.in_flight[call.id] = call

    def _fail(self, call: Call, failure: Failure) -> None:
        call.error = failure.error(self.endpoint, call.elapsed)
        call.done = True

    def forget(self, call: Call) -> None:
        """The caller gave up on ``call`` (its deadline): a late reply will be dropped."""
        self.in_flight.pop(call.id, None)
        if call in self.waiting:
            self.waiting.remove(call)

    # -- what happened on the connection ------------------------------------------------------

    def on_events(self, now: float) -> List[Call]:
        """Drain the monitor, update the link's state; return the calls this finished."""
        finished: List[Call] = []
        while self.monitor is not None:
            try:
                message = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            event, value = struct.unpack("=hi", message[0][:6])
            if event == zmq.EVENT_CONNECT_DELAYED:
                self._delayed_at = self._delayed_at or now
            elif event == zmq.EVENT_CONNECTED:
                self._tcp, self._connected_at = True, now
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.up, self.failure = True, None
                waiting, self.waiting = self.waiting, []
                for call in waiting:
                    self._send(call)
            elif event & (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                          | zmq.EVENT_HANDSHAKE_FAILED_AUTH):
                timed_out = now - self._connected_at >= HANDSHAKE_TIMEOUT_MS / 1000 - 0.1
                finished += self._verdict(handshake_failure(event, value, self.curve,
                                                            timed_out), now)
            elif event == zmq.EVENT_DISCONNECTED and self.up:
                finished += self._lost(now)
                # A fresh socket: libzmq does not reconnect after every kind of loss
                # (a frame over ZMQ_MAXMSGSIZE, for one), and nothing of the old
                # connection may linger.
                self.reset()
            elif event == zmq.EVENT_CONNECT_RETRIED:
                if not self._tcp:
                    finished += self._verdict(self._refused(now), now)
                self._tcp, self._delayed_at = False, None
        return finished

    def _refused(self, now: float) -> Failure:
        if self._delayed_at is not None and now - self._delayed_at >= CONNECT_TIMEOUT_MS / 1000:
            return Failure(ErrorCode.UNREACHABLE,
                           "no answer to the connection attempt (connection timed out): "
                           "is the host up and the network between us open?")
        return Failure(ErrorCode.UNREACHABLE,
                       "nothing is listening (connection refused): is the server running?")

    def _verdict(self, failure: Failure, now: float) -> List[Call]:
        """The link is down for ``failure``: the calls waiting for a verdict fail.

        A call re-sent after a lost connection waits out its grace instead (the peer
        may be restarting), unless the failure is one that will not change.
        """
        self.failure = failure
        waiting: List[Call] = []
        kept: List[Call] = []
        for call in self.waiting:
            graced = call.give_up_at is not None and call.give_up_at > now
            (kept if graced and not failure.lasting else waiting).append(call)
        self.waiting = kept
        for call in waiting:
            self._fail(call, failure)
        if failure.lasting:
            if self.closed_until <= now:  # say it once per interval, not per handshake
                log.warning("%s: %s", self.endpoint, failure.message)
            self.closed_until = now + HANDSHAKE_RETRY_AFTER
            self.close()
        return waiting

    def _lost(self, now: float) -> List[Call]:
        """The connection went: calls in flight fail, or wait for it to come back."""
        self.failure = Failure(ErrorCode.TIMEOUT,
                               "the connection was lost before the reply: the server stopped "
                               "answering heartbeats (frozen, or the network was cut), closed "
                               "the connection (it stopped), or sent a frame larger than "
                               "--max-reply-bytes")
        finished = []
        in_flight, self.in_flight = self.in_flight, {}
        for call in in_flight.values():
            if call.retries > 0:
                call.retries -= 1
                call.give_up_at = now + RECONNECT_GRACE
                self.waiting.append(call)
            else:
                self._fail(call, self.failure)
                finished.append(call)
        return finished

    def on_readable(self) -> List[Call]:
        """Read the replies waiting on the socket (a batch: one busy peer must not starve
        the loop; the poll reports the rest); return the calls they finished."""
        finished: List[Call] = []
        for _ in range(READ_BATCH):
            try:
                finished += self._read_reply()
            except zmq.Again:  # the poll's news was stale: read already, or a new socket
                break
            # Asked before the next read, not tried until zmq.Again: an exception per
            # wake-up costs more. (The first read needs no asking: the poll said so.) With
            # no call waiting, nothing is asked: a late reply is read when the poll says.
            if (not self.in_flight or self.socket is None
                    or not self.socket.getsockopt(_SOCKET_EVENTS) & _POLLIN):
                break
        return finished

    def _read_reply(self) -> List[Call]:
        """One reply, frame by frame: matched to its call by id, held within the budget."""
        sock = self.socket
        if sock is None:  # closed since the poll (a refused handshake): nothing to read
            return []
        delimiter = sock.recv(_NOBLOCK, copy=False)
        if delimiter.bytes or not delimiter.more:
            return self._untrusted("a reply must start with an empty delimiter frame")
        head = sock.recv(copy=False)
        try:
            header = protocol.decode_header(head.bytes)
        except RemoteProtocolError as exc:
            return self._untrusted(exc.message)
        if not header.id and not header.ok:  # the peer could not read our request at all
            error = header.error or {"code": ErrorCode.BAD_REPLY, "message": "refused"}
            return self._drop_connection(Failure(error["code"],
                                                 f"the peer refused: {error['message']}"))
        call = self.in_flight.get(header.id)
        budget = self.max_reply_bytes - max(len(head), FRAME_COST)
        chunks: List[zmq.Frame] = []
        more = head.more
        while more:
            frame = sock.recv(copy=False)
            more = frame.more
            budget -= max(len(frame), FRAME_COST)
            if budget < 0:
                limit = self.max_reply_bytes >> 20
                return self._drop_connection(Failure(
                    ErrorCode.LIMIT_EXCEEDED,
                    f"a reply was larger than --max-reply-bytes ({limit} MiB, counting each "
                    f"frame as at least {FRAME_COST} bytes)"))
            if call is not None:
                chunks.append(own_memory(frame))
        if call is None:  # a late reply to a call we gave up on: dropped
            return []
        del self.in_flight[call.id]
        if header.chunks != len(chunks):
            self._fail(call, Failure(ErrorCode.BAD_REPLY,
                                     f"the reply announces {header.chunks} chunks but "
                                     f"{len(chunks)} followed"))
        else:
            call.header, call.chunks, call.done = header, chunks, True
        return [call]

    def _untrusted(self, why: str) -> List[Call]:
        """Garbage on the connection: no call can be matched to it, so every one fails."""
        return self._drop_connection(Failure(
            ErrorCode.BAD_REPLY,
            f"the peer answered with something that is not the zdir protocol: {why}"))

    def _drop_connection(self, failure: Failure) -> List[Call]:
        """Fail every call in flight and start a new connection: the rest of a reply dies."""
        _peer_log.warning((self.endpoint, failure.code), "%s: %s", self.endpoint, failure.message)
        in_flight, self.in_flight = self.in_flight, {}
        for call in in_flight.values():
            self._fail(call, failure)
        self.reset()
        return list(in_flight.values())
