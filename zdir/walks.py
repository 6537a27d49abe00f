"""Local listings run by worker threads, the only code of a node that touches the file system.

A ``Walk`` is one listing of this node's root (a path and the options that shape it).
Requests that ask for the same listing while it runs share it (a client's retry joins
the walk it started, instead of starting another). Worker threads run walks and hand
back encoded chunk frames; they own no socket but the one that says "done" to the
node's loop. The loop decides everything else: which walk runs next (fairly, peer by
peer), when a request stops waiting for its walk (its deadline), and when a walk
nobody waits for any more is cancelled. One peer's walks never hold every worker
(``PEER_RESERVE``), so a flood from one client leaves room for the others.

A walk can hang inside the kernel (a dead NFS server, a FUSE daemon that never
answers) where no flag reaches it. So that such walks cannot take every worker:
walks under one top-level directory that have run longer than ``SLOW_WALK`` hold at
most half the workers, and a worker whose walk was abandoned is replaced, up to
``MAX_THREADS_FACTOR`` times the configured workers in all.
"""

from __future__ import annotations

import collections
import logging
import queue
import sys
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, OrderedDict, Tuple

import zmq

from . import chunkframes, protocol
from .cache import ListingCache
from .errors import ListingError
from .cursors import Cursor, Page
from .lister import DirListing, Options, split_path
from .lograte import RateLimitedLog
from .protocol import ErrorCode, SourceStatus, error_dict

log = logging.getLogger(__name__)
_bug_log = RateLimitedLog(log)  # one traceback per kind of bug and interval

SLOW_WALK = 1.0  # seconds after which a running walk counts against its directory's share
MAX_THREADS_FACTOR = 4  # worker threads at most, stuck ones included, per configured worker
PEER_RESERVE = 1  # workers that one peer's walks leave free for everyone else's


class Walk:
    """One listing of this node's root, shared by every request that asks for it."""

    __slots__ = ("key", "request", "peer", "top", "token", "frames", "counted", "status",
                 "started", "finished", "cancelled", "waiters", "listing", "cursor", "page")

    def __init__(self, key: tuple, request: protocol.Request, peer: bytes, token: bytes) -> None:
        self.key = key
        self.request = request
        self.peer = peer  # the first asker: whose turn it is in the fair queue
        self.top = _top_directory(request.path)
        self.token = token
        self.frames: List[bytes] = []  # appended by the worker; read by the loop
        self.counted = 0  # entries in ``frames`` so far
        self.status: Optional[SourceStatus] = None  # set by the worker when it is done
        self.started: Optional[float] = None
        self.finished = False
        self.cancelled = False
        self.waiters = 0  # requests still waiting for it
        self.listing: Optional[DirListing] = None  # set by the worker once it is open
        self.cursor: Optional[Cursor] = None  # paged: the walk continues this cursor ...
        self.page: Optional[Page] = None  # ... and leaves one page here

    def snapshot(self, name: str, waited: float) -> Tuple[SourceStatus, List[bytes]]:
        """What the walk has so far, as a partial source: for a request at its deadline.

        That includes the entries gathered for the next chunk, which a walk stuck in a
        hung directory may never send: without them, a walk that found a few hundred
        entries before it stuck would answer none.
        """
        listing = self.listing
        taken, gathered = listing.gathered() if listing is not None else (0, None)
        frames = self.frames[:]  # a list copy is atomic: the worker may be appending
        entries = self.counted
        if gathered is not None and taken == len(frames):  # else a chunk is on its way
            frames.append(chunkframes.encode_chunk(name, gathered))
            entries += len(gathered.names)
        if self.started is None:
            why = "no worker was free before the deadline (the node is busy)"
        else:
            why = "the listing was still running at the deadline (a slow or hung file system?)"
        status = SourceStatus(name, True, error=error_dict(ErrorCode.TIMEOUT, why),
                              entries=entries, truncated=True,
                              elapsed_ms=round(waited * 1000.0, 3))
        return status, frames


def _top_directory(path: protocol.Name) -> str:
    text = chunkframes.name_from_wire(path)
    return text.strip("/").split("/", 1)[0]


class Workers:
    """The worker threads, the fair queue of walks waiting for them, and the walks running.

    Called from the node's loop only, except ``_run`` (the threads). ``done_address``
    is where each thread pushes a walk's token when the walk has finished.
    """

    def __init__(self, context: zmq.Context, done_address: str, *, workers: int, root: str,
                 name: str, options: Callable[[protocol.Request], Options],
                 cache: ListingCache) -> None:
        self.context = context
        self.done_address = done_address
        self.workers = workers
        self.root = root
        self.name = name
        self.options = options
        self.cache = cache
        self.running: Dict[bytes, Walk] = {}  # by token
        self.by_key: Dict[tuple, Walk] = {}  # queued or running, for requests to share
        self._queued: OrderedDict[bytes, Deque[Walk]] = collections.OrderedDict()  # by peer
        self._jobs: "queue.SimpleQueue[Optional[Walk]]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._spare = 0  # threads started to stand in for abandoned walks
        for _ in range(workers):
            self._start_thread()

    @property
    def queued(self) -> int:
        return sum(map(len, self._queued.values()))

    @property
    def idle(self) -> int:
        """Threads free to start a walk now."""
        return self._idle

    def queued_for(self, peer: bytes) -> int:
        return len(self._queued.get(peer, ()))

    def find(self, key: tuple) -> Optional[Walk]:
        return self.by_key.get(key)

    def enqueue(self, walk: Walk) -> None:
        self.by_key[walk.key] = walk
        self._queued.setdefault(walk.peer, collections.deque()).append(walk)

    def dispatch(self, now: float) -> None:
        """Start queued walks while threads are free: one peer at a time, round robin.

        One peer's walks hold every worker but ``PEER_RESERVE``: a flood of long walks
        from one client, started before anyone else asked, would otherwise keep every
        worker until its deadlines.
        """
        if not self._queued or self._idle <= 0:  # the usual case: nothing to start
            return
        slow: Dict[str, int] = collections.Counter(
            w.top for w in self.running.values() if now - (w.started or now) >= SLOW_WALK)
        by_peer: Dict[bytes, int] = collections.Counter(
            w.peer for w in self.running.values() if not w.cancelled)
        share = max(1, self.workers // 2)
        peer_share = max(1, self.workers - PEER_RESERVE)
        while self._idle > 0 and self._queued:
            walk = self._next_walk(lambda w: slow[w.top] < share and by_peer[w.peer] < peer_share)
            if walk is None:
                return
            if walk.cancelled:  # every request gave up while it was queued
                self.by_key.pop(walk.key, None)
                continue
            walk.started = now
            by_peer[walk.peer] += 1
            self.running[walk.token] = walk
            with self._lock:
                self._idle -= 1
            self._jobs.put(walk)

    def _next_walk(self, allowed: Callable[[Walk], bool]) -> Optional[Walk]:
        for peer in list(self._queued):
            walks = self._queued[peer]
            for walk in walks:
                if walk.cancelled or allowed(walk):
                    walks.remove(walk)
                    del self._queued[peer]
                    if walks:  # this peer goes to the back of the line
                        self._queued[peer] = walks
                    return walk
        return None

    def finished(self, token: bytes) -> Optional[Walk]:
        """The loop heard that the walk with ``token`` is done; forget it and return it."""
        walk = self.running.pop(token, None)
        if walk is not None and self.by_key.get(walk.key) is walk:
            del self.by_key[walk.key]
        return walk

    def abandon(self, walk: Walk) -> None:
        """Nobody waits for ``walk`` any more: stop it, and stand in for its thread."""
        walk.cancelled = True
        if walk.listing is not None:
            walk.listing.cancel()
        if self.by_key.get(walk.key) is walk:
            del self.by_key[walk.key]
        if walk.token in self.running and not walk.finished:
            with self._lock:
                limit = self.workers * MAX_THREADS_FACTOR
                if self._threads >= limit:
                    log.warning("%d worker threads are stuck in listings that were given up; "
                                "no more are started (limit %d)", self._threads, limit)
                    return
                self._spare += 1
            self._start_thread()

    def stop(self) -> None:
        with self._lock:
            threads = self._threads
        for _ in range(threads):
            self._jobs.put(None)

    # -- the threads -----------------------------------------------------------------------

    def _start_thread(self) -> None:
        with self._lock:
            self._threads += 1
            self._idle += 1
        threading.Thread(target=self._run, name=f"{self.name}-worker", daemon=True).start()

    def _run(self) -> None:
        done = self.context.socket(zmq.PUSH)
        done.linger = 0
        done.connect(self.done_address)
        try:
            while True:
                walk = self._jobs.get()
                if walk is None:
                    return
                if walk.cursor is not None:
                    self._page(walk)
                else:
                    self._list(walk)
                walk.finished = True
                done.send(walk.token)
                with self._lock:
                    if self._spare > 0 and walk.cancelled:  # a stand-in took this one's place
                        self._spare -= 1
                        return
                    self._idle += 1
        except zmq.ContextTerminated:
            return
        finally:
            with self._lock:
                self._threads -= 1
            done.close(linger=0)

    def _list(self, walk: Walk) -> None:
        """Run one walk: frames go to ``walk.frames`` as they are made, then its status."""
        started = time.monotonic()
        name = self.name
        options = self.options(walk.request)

        def encode(chunk: chunkframes.Chunk) -> bytes:
            walk.counted += len(chunk.names)
            return chunkframes.encode_chunk(name, chunk)

        try:
            listing = walk.listing = DirListing(self.root, walk.request.path, options)
            if walk.cancelled:  # abandoned while it was being opened
                listing.cancel()
            frames = self.cache.frames(listing, encode, tuple(split_path(walk.request.path)))
            try:
                for frame in frames:
                    walk.frames.append(frame)
                    if walk.cancelled:  # nobody waits for it any more
                        break
            finally:
                frames.close()  # closes the listing too, when it stopped half-way
        except ListingError as exc:
            walk.status = SourceStatus(name, False, error=error_dict(exc.code, exc.message),
                                       elapsed_ms=ms_since(started))
            return
        except Exception as exc:  # a bug: the request gets an answer, the log the details
            _bug_log.error(type(exc).__name__, "listing %r failed", walk.request.path,
                           exc_info=exc)
            message = f"{type(exc).__name__} on {name}; its log has the details"
            walk.status = SourceStatus(name, False, error=error_dict(ErrorCode.INTERNAL, message),
                                       elapsed_ms=ms_since(started))
            return
        warning = listing.warning
        walk.status = SourceStatus(
            name, True, error=error_dict(warning.code, warning.message) if warning else None,
            entries=listing.entries, truncated=listing.truncated, elapsed_ms=ms_since(started))


    def _page(self, walk: Walk) -> None:
        """Continue a cursor's walk for one page: up to ``page_entries``, or ``page_ms``."""
        cursor = walk.cursor
        assert cursor is not None
        request = walk.request
        page = walk.page = Page(cursor.chunks)
        started = time.monotonic()
        limit = cursor.options.page_entries or sys.maxsize
        flush_at = started + request.page_ms / 1000.0 if request.page_ms else float("inf")
        name = self.name

        def encode(chunk: chunkframes.Chunk) -> bytes:
            cursor.tail = (len(chunk.names), chunk.names[-1])
            return chunkframes.encode_chunk(name, chunk)

        try:
            if cursor.frames is None:  # the first page: open the listing
                listing = cursor.listing = DirListing(self.root, request.path, cursor.options)
                walk.listing = listing
                if walk.cancelled:  # abandoned while it was being opened
                    listing.cancel()
                if cursor.options.after:  # a resumed listing is never the whole one
                    cursor.frames = (encode(chunk) for chunk in listing)
                else:
                    cursor.frames = self.cache.frames(listing, encode)
            listing = walk.listing = cursor.listing
            listing.page_end = cursor.produced + limit
            listing.flush_at = flush_at
            while page.entries < limit and not (request.page_ms and time.monotonic() >= flush_at):
                cursor.tail = None
                try:
                    frame = next(cursor.frames)  # type: ignore[arg-type]
                except StopIteration:
                    page.finished = True
                    break
                count, last = cursor.tail or _tail(frame)  # no tail: a kept (cached) frame
                page.counts.append(count)  # before the frame: a snapshot reads frames first
                page.frames.append(frame)
                cursor.chunks += 1
                page.entries += count
                page.last = last
                cursor.produced += count
        except ListingError as exc:
            page.finished = True
            cursor.status = SourceStatus(name, False, error=error_dict(exc.code, exc.message),
                                         elapsed_ms=ms_since(started))
            return
        except Exception as exc:  # a bug: the request gets an answer, the log the details
            log.error("listing %r failed", request.path, exc_info=exc)
            page.finished = True
            message = f"{type(exc).__name__} on {name}; its log has the details"
            cursor.status = SourceStatus(name, False, error=error_dict(ErrorCode.INTERNAL,
                                                                       message))
            return
        if page.finished:
            listing = cursor.listing
            warning = listing.warning
            cursor.status = SourceStatus(
                name, True, error=error_dict(warning.code, warning.message) if warning else None,
                truncated=listing.truncated)


def _tail(frame: bytes) -> Tuple[int, protocol.Name]:
    """Entries in an encoded chunk, and its last name."""
    names = protocol.unpack(frame, "chunk")[1]
    return len(names), names[-1]


def ms_since(started: float) -> float:
    """Milliseconds since ``started`` (time.monotonic()), as source maps report them."""
    return round((time.monotonic() - started) * 1000.0, 3)
