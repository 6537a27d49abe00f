"""The calls of one loop over its links: what to poll, what finished, what is late.

``reliable.Link`` decides what a connection's events mean for the calls on it; an
``Exchange`` holds the links a loop owns (the node's upstreams, the client's one
server), keeps the calls' deadlines in one heap, and tells the loop which sockets to
poll and when to wake. ``wait_for`` is the same loop for a caller that has none of
its own (the client).
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from typing import Dict, List, Optional, Tuple, Union

import zmq

from .protocol import ErrorCode
from .reliable import Call, Failure, Link
from .sockets import poll_fd

TRIM_DELAY = 1.0  # seconds after an oversized reply before its memory is handed back
# A peer that answers "busy" is asked again after a pause, for as long as the call's
# deadline allows: the client's calls to its server and a node's to its upstreams.
BUSY_BACKOFF = 0.05  # seconds before the first new try; doubles, times 0.5-1.5 ...
BUSY_BACKOFF_MAX = 2.0  # ... up to this
BUSY_LAST_TRY = 0.05  # seconds kept for the last try before the deadline
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
Pollable = Union[zmq.Socket, int]  # a socket, or a descriptor (sockets.poll_fd)


class Exchange:
    """The links of one loop and their calls: what to poll, what finished, what is late."""

    def __init__(self) -> None:
        self.links: List[Link] = []
        self._deadlines: List[Call] = []  # heap by deadline; finished calls are skipped
        self.version = 0  # changes whenever the set of sockets to poll changes
        self._trim_at: Optional[float] = None  # when to hand memory back after a flood
        self._again: List[Tuple[float, int, Call]] = []  # heap: busy peers' calls, by when
        self._again_order = itertools.count()  # ties in that heap: first come, first sent
        self._waiting: Optional[Tuple[int, Dict[Pollable, Link], zmq.Poller]] = None

    def add(self, link: Link) -> None:
        self.links.append(link)
        self.version += 1

    def remove(self, link: Link) -> List[Call]:
        """Stop using a link (its calls fail as unreachable) and close it."""
        self.links.remove(link)
        self.version += 1
        failure = Failure(ErrorCode.UNREACHABLE, "removed from the upstream list")
        calls = [*link.waiting, *link.in_flight.values()]
        for call in calls:
            link._fail(call, failure)
        link.close()
        return calls

    def close(self) -> None:
        for link in self.links:
            link.close()

    def start(self, link: Link, call: Call, now: float) -> List[Call]:
        """Send ``call`` over ``link``, or keep it for the link's next verdict.

        Returns the calls that finished meanwhile: ``call`` itself if it failed at once,
        and any other call that events read here (the link's backlog, so that ``call``
        is judged on what happens next, not on what happened while nobody looked).
        """
        before = link.socket
        # Asked first: draining an empty monitor costs a zmq.Again per call.
        monitor = link.monitor
        pending = monitor is not None and monitor.getsockopt(_EVENTS) & _POLLIN
        finished = link.on_events(now) if pending else []
        if link.socket is not before:  # a new connection (events read here):
            self.version += 1  # the loop must poll its socket and monitor, not the old ones
        if self._submit(link, call, now):
            heapq.heappush(self._deadlines, call)
        else:
            finished.append(call)
        return finished

    def _submit(self, link: Link, call: Call, now: float) -> bool:
        before = link.socket
        started = link.submit(call, now)
        if link.socket is not before:  # opened here
            self.version += 1
        return started

    def by_socket(self) -> Dict[Pollable, Link]:
        """What to poll for input, and its link: each link's connection, and its monitor's
        descriptor (``sockets.poll_fd``: ``on_events`` reads it until zmq.Again)."""
        found: Dict[Pollable, Link] = {}
        for link in self.links:
            if link.socket is not None:
                found[link.socket] = found[poll_fd(link.monitor)] = link  # type: ignore[arg-type]
        return found

    def handle(self, link: Link, sock: Pollable, now: float) -> List[Call]:
        """What became of the calls after ``sock`` (from ``by_socket``) was readable."""
        before = link.socket
        if sock is link.socket:
            finished = self._unless_busy(link.on_readable(), now)
        else:  # its monitor (or a socket replaced since the poll: nothing to read there)
            finished = link.on_events(now)
        if link.socket is not before:
            self.version += 1
            if any(call.error is not None and call.error.code == ErrorCode.LIMIT_EXCEEDED
                   for call in finished):
                # libzmq held the whole reply and frees it in its own thread, soon.
                self._trim_at = now + TRIM_DELAY
        return finished

    def next_deadline(self) -> Optional[float]:
        """When ``expire`` next has work: a deadline, a busy peer's next try, a memory trim,
        a lost connection's grace (None: nothing is timed). Asked once per loop turn."""
        heap = self._deadlines
        while heap and heap[0].done:
            heapq.heappop(heap)
        wake = heap[0].deadline if heap else None
        if self._again and (wake is None or self._again[0][0] < wake):
            wake = self._again[0][0]
        if self._trim_at is not None and (wake is None or self._trim_at < wake):
            wake = self._trim_at
        for link in self.links:
            for call in link.waiting:  # empty unless a link is not up
                if call.give_up_at is not None and (wake is None or call.give_up_at < wake):
                    wake = call.give_up_at
        return wake

    def expire(self, now: float) -> List[Call]:
        """Calls whose deadline (or reconnection grace) has passed fail with ``timeout``."""
        if self._trim_at is not None and now >= self._trim_at:
            self._trim_at = None
            release_memory()
        finished = []
        while self._again and self._again[0][0] <= now:
            _, _, call = heapq.heappop(self._again)
            if not call.done and not self._submit(call.link, call, now):  # type: ignore[arg-type]
                finished.append(call)  # (done: its caller gave up on it meanwhile)
        heap = self._deadlines
        while heap and (heap[0].done or heap[0].deadline <= now):
            call = heapq.heappop(heap)
            if not call.done:
                self.time_out(call)
                finished.append(call)
        for link in self.links:
            for call in [c for c in link.waiting if c.give_up_at is not None
                         and c.give_up_at <= now]:
                link.forget(call)
                link._fail(call, link.failure or Failure(ErrorCode.TIMEOUT, "connection lost"))
                finished.append(call)
        return finished

    def _unless_busy(self, calls: List[Call], now: float) -> List[Call]:
        """The finished calls; those answered "busy" go again after a pause, deadline allowing.

        The pause doubles from BUSY_BACKOFF up to BUSY_BACKOFF_MAX, times a random 0.5
        to 1.5 so that many callers do not come back together; the last one is cut
        short so that one more try fits before the deadline. The final "busy" answer
        is the caller's to read.
        """
        finished = []
        for call in calls:
            header = call.header
            left = call.deadline - now - BUSY_LAST_TRY
            if header is None or header.code != ErrorCode.BUSY or left <= 0:
                finished.append(call)
                continue
            pause = min(BUSY_BACKOFF * 2 ** call.busy_answers, BUSY_BACKOFF_MAX)
            call.busy_answers += 1
            call.header, call.chunks, call.done = None, [], False
            when = now + min(pause * random.uniform(0.5, 1.5), left)
            heapq.heappush(self._again, (when, next(self._again_order), call))
        return finished

    def time_out(self, call: Call) -> None:
        """Give up on ``call`` now, naming what the link was doing."""
        link = call.link
        assert link is not None  # every call in the heap was submitted to a link
        waited = call.id not in link.in_flight
        link.forget(call)
        if not waited:
            message = ("connected and answering heartbeats, but still working at the deadline: "
                       "give it more time with --timeout")
        elif link.failure is not None:
            message = link.failure.message
        else:
            message = "still connecting at the deadline (no verdict on the connection yet)"
        link._fail(call, Failure(ErrorCode.TIMEOUT, message))

    def wait_for(self, call: Call) -> None:
        """Block until ``call`` is done (for a caller with no loop of its own: the client)."""
        version, owners, poller = self._wait_poller()
        while not call.done:
            now = time.monotonic()
            wake = self.next_deadline()
            if wake is not None and wake <= now:  # else nothing is due: no expiry to run
                self.expire(now)
                continue
            timeout = None if wake is None else (wake - now) * 1000.0
            for sock, _ in poller.poll(timeout):
                link = owners.get(sock)
                if link is not None:
                    self.handle(link, sock, time.monotonic())
            if self.version != version:
                version, owners, poller = self._wait_poller()

    def _wait_poller(self) -> Tuple[int, Dict[Pollable, Link], zmq.Poller]:
        """The sockets ``wait_for`` polls: made again only when they change, not per call."""
        if self._waiting is None or self._waiting[0] != self.version:
            owners = self.by_socket()
            self._waiting = (self.version, owners, _poller(owners))
        return self._waiting


def _poller(sockets: Dict[Pollable, Link]) -> zmq.Poller:
    poller = zmq.Poller()
    for sock in sockets:
        poller.register(sock, zmq.POLLIN)
    return poller


def release_memory() -> None:
    """Hand freed heap back to the system after a reply that was too large.

    glibc keeps freed memory for reuse; after a hostile peer's flood that would be
    hundreds of MiB held for nothing. Elsewhere there is nothing to call.
    """
    import ctypes  # here, not at the top: only after a flood, and the client starts faster

    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc's; found in the running process
    except (OSError, AttributeError, TypeError):
        return
    trim(0)
