"""The serving node shared by both servers: one loop owns every socket; threads only list.

::

    clients (REQ) ──> ROUTER front end ──┐            ┌──> Link (DEALER) ──> upstream 1
                                         ├─ the loop ─┼──> Link (DEALER) ──> upstream 2
    worker threads ──> PULL "walk done" ─┘            └──> ...

The loop receives a request, answers at once what needs no file system (a ping, a
refusal), asks every upstream over its one connection (many requests in flight,
matched by id), and hands the local listing to a worker thread (``walks.py``). It
replies when every part is in, or at the request's deadline with what it has: a
source still listing or still working upstream is then reported as ``timeout``,
and the rest of the answer is not held back by it.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import threading
import time
import uuid
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import zmq

from . import __version__, chunkframes, protocol, reliable, sockets, tokens
from .ahead import PagesAhead
from .cache import ListingCache
from .cursors import Cursors
from .errors import ListingError, ProtocolError, RemoteProtocolError, UsageError
from .lister import Options, split_path
from .lograte import RateLimitedLog
from .nodeconfig import NodeConfig
from .paged import PagedListings, cut_off
from .pending import Pending, envelope_and_body, reply_margin
from .protocol import ErrorCode, ReplyHeader, SourceStatus, error_dict
from .exchange import Exchange, Pollable
from .reliable import Call, Link
from .sourcenames import SourceNames
from .upstreams import NO_TIME_LEFT, Upstreams, sockets_needed
from .walks import Walk, Workers, ms_since

if TYPE_CHECKING:  # keys imports zmq.auth, which only CURVE deployments need
    from .keys import Gatekeeper

log = logging.getLogger(__name__)
_peer_log = RateLimitedLog(log)  # what peers can make us say over and over

SHUTDOWN_GRACE = 1.0  # seconds the worker threads get to close their sockets on stop
RECEIVE_BATCH = 256  # requests read per wake-up before the loop looks at its other sockets
PAGED_LISTING_LIMIT = 1 << 62  # entries in a whole paged listing: none to speak of
ACCEPT_LOG_INTERVAL = 60.0  # seconds between two log lines about running out of descriptors
_EVENTS, _POLLIN, _NOBLOCK = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.NOBLOCK)


class Node(PagedListings, Upstreams):
    """Owns the context, the front end, the upstream links, the loop and the workers."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.node_id = f"{cfg.name}-{uuid.uuid4().hex[:12]}"
        self.started = time.monotonic()
        self.stopping = threading.Event()
        self._reload = False  # set by SIGHUP's handler, acted on by the loop
        # stop() and reload() write a byte here (from a signal handler or another
        # thread), so that an idle loop sleeps in its poll instead of waking to look.
        self._wake_up, self._wake_call = socket.socketpair()
        for end in (self._wake_up, self._wake_call):
            end.setblocking(False)
        self.context = zmq.Context()
        self.context.setsockopt(zmq.LINGER, 0)
        self.frontend: Optional[zmq.Socket] = None
        self.endpoint = ""
        self.cache = ListingCache(cfg.cache_bytes, cfg.stat_ttl)
        self.exchange = Exchange()
        self.links: List[Link] = []
        self.pending: Dict[int, Pending] = {}
        self._walk_waiters: Dict[bytes, List[Pending]] = {}
        self.cursors = Cursors()
        self.source_names = SourceNames(cfg.name)  # one name per source in our replies
        self.ahead = PagesAhead()  # upstreams' next pages, asked for before the client does
        self._done: Optional[zmq.Socket] = None
        self._accepts: Optional[zmq.Socket] = None  # the front end's failed accepts
        self._done_fd = self._accepts_fd = -1  # what the loop polls for them (poll_fd)
        self._accept_logged = -ACCEPT_LOG_INTERVAL
        self._accept_failures = 0
        self.workers: Optional[Workers] = None
        self._gatekeeper: Optional["Gatekeeper"] = None

    # -- start and stop ---------------------------------------------------------------------

    def bind(self) -> str:
        """Bind the front end, connect the upstreams, start the workers; the real endpoint."""
        upstreams = self._wanted_upstreams()  # a bad upstreams file stops the start
        # Sockets are counted when the context starts: room for the upstreams and
        # as many again, for a reload that adds some.
        self.context.set(zmq.MAX_SOCKETS, max(1024, 2 * sockets_needed(self.cfg, len(upstreams))))
        frontend = self.context.socket(zmq.ROUTER)
        reliable.tune(frontend)
        frontend.setsockopt(zmq.MAXMSGSIZE, self.cfg.max_request_bytes)
        frontend.ipv6 = "[" in self.cfg.bind or "::" in self.cfg.bind
        if self.cfg.curve_server is not None:
            self._gatekeeper = self.cfg.curve_server.secure(frontend)
        try:
            frontend.bind(self.cfg.bind)
        except zmq.ZMQError as exc:
            frontend.close(linger=0)
            self._stop_gatekeeper()
            raise UsageError(f"cannot bind {self.cfg.bind}: {exc}") from exc
        self.frontend = frontend
        self.endpoint = frontend.getsockopt_string(zmq.LAST_ENDPOINT)
        self._accepts = sockets.watch(frontend, zmq.EVENT_ACCEPT_FAILED)
        self._accepts_fd = sockets.poll_fd(self._accepts)
        for upstream in upstreams:
            self.links.append(self._link(upstream))
        done_address = f"inproc://{self.node_id}-done"
        self._done = self.context.socket(zmq.PULL)
        self._done.bind(done_address)
        self._done_fd = sockets.poll_fd(self._done)
        self.workers = Workers(self.context, done_address, workers=self.cfg.workers,
                               root=self.cfg.root, name=self.cfg.name,
                               options=self._options, cache=self.cache)
        return self.endpoint

    def stop(self) -> None:
        self.stopping.set()
        self._wake()

    def wakeup_fd(self) -> int:
        """A descriptor whose writes wake the loop: for ``signal.set_wakeup_fd``."""
        return self._wake_call.fileno()

    def _wake(self) -> None:
        """Wake the loop from its poll (safe from a signal handler and from any thread)."""
        try:
            self._wake_call.send(b"\0")
        except OSError:  # full (it will wake anyway), or closed: the loop has ended
            pass

    def _shutdown(self) -> None:
        for sock in (self._accepts, self.frontend, self._done):
            if sock is not None:
                sock.close(linger=0)
        self.exchange.close()
        if self.workers is not None:
            self.workers.stop()
        self.cache.close()
        self._stop_gatekeeper()
        # Terminating the context wakes every thread blocked in ZeroMQ; a worker stuck
        # in a hung file system is not waited for beyond the grace period.
        closer = threading.Thread(target=self.context.term, daemon=True)
        closer.start()
        closer.join(SHUTDOWN_GRACE)
        for end in (self._wake_up, self._wake_call):
            end.close()

    def _stop_gatekeeper(self) -> None:
        """The ZAP thread's sockets must close before the context can terminate."""
        if self._gatekeeper is not None:
            self._gatekeeper.stop()
            self._gatekeeper = None

    # -- the loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        """Run the loop until ``stop()``; then close everything, LINGER 0."""
        try:
            poller, owners, version = self._poller()
            # Read until zmq.Again once before the first poll (sockets.poll_fd): the front
            # end was bound before it was watched, so an event may be waiting unsignalled.
            self._accept_failed(time.monotonic())
            while not self.stopping.is_set():
                if self._reload:
                    self._reload_upstreams()
                if version != self.exchange.version:
                    poller, owners, version = self._poller()
                wake = self._next_wake()
                timeout = None if wake is None else max(0.0, (wake - time.monotonic()) * 1000.0)
                for sock, _ in poller.poll(timeout):
                    now = time.monotonic()
                    if sock is self.frontend:
                        self._receive(now)
                    elif sock == self._done_fd:
                        self._walks_done()
                    elif sock == self._accepts_fd:
                        self._accept_failed(now)
                    elif sock is self._wake_up:
                        _drain(self._wake_up)  # stop() or reload(): looked at above
                    else:
                        link = owners.get(sock)
                        if link is not None:  # else closed since the poll began
                            self._calls_done(self.exchange.handle(link, sock, now))
                now = time.monotonic()
                # Nothing is due before the wake: what became timed meanwhile (a new
                # request, a new call) is due later, or its wake makes the next poll
                # return at once.
                if wake is not None and now >= wake:
                    self._calls_done(self.exchange.expire(now))
                    self._expire(now)
                    self.cursors.expire(now)
                    self.ahead.expire(now)
                self.workers.dispatch(now)  # type: ignore[union-attr]
        finally:
            self._shutdown()

    def _poller(self) -> Tuple[zmq.Poller, Dict[Pollable, Link], int]:
        """What the loop polls: the front end and the links' sockets, and the descriptors of
        the sockets it reads until zmq.Again (``sockets.poll_fd``) and of its wake-up pair."""
        poller = zmq.Poller()
        poller.register(self.frontend, zmq.POLLIN)
        poller.register(self._done_fd, zmq.POLLIN)
        poller.register(self._accepts_fd, zmq.POLLIN)
        poller.register(self._wake_up, zmq.POLLIN)
        owners = self.exchange.by_socket()
        for sock in owners:
            poller.register(sock, zmq.POLLIN)
        return poller, owners, self.exchange.version

    def _next_wake(self) -> Optional[float]:
        """When the next deadline or lease ends (time.monotonic()); None: nothing is timed."""
        wake = min((p.deadline for p in self.pending.values()), default=None)
        for then in (self.exchange.next_deadline(), self.cursors.next_expiry(),
                     self.ahead.next_expiry()):
            if then is not None and (wake is None or then < wake):
                wake = then
        return wake

    def _accept_failed(self, now: float) -> None:
        """Out of descriptors: say so, once per interval, not once per failed accept.

        libzmq retries the accept at once, and the connections it has keep being served;
        stopping to listen would close them all (an unbound listener takes its
        connections with it), so the remedy is the limit: see docs/security.md.
        """
        while True:
            try:
                message = self._accepts.recv_multipart(zmq.NOBLOCK)  # type: ignore[union-attr]
            except zmq.Again:
                break
            if struct.unpack("=hi", message[0][:6])[1] in _NO_DESCRIPTORS:
                self._accept_failures += 1
        if self._accept_failures and now - self._accept_logged >= ACCEPT_LOG_INTERVAL:
            log.warning("out of file descriptors (limit %s): %d connections could not be "
                        "accepted; the ones already open are served; raise the limit "
                        "(LimitNOFILE=, ulimit -n)", _descriptor_limit(), self._accept_failures)
            self._accept_logged, self._accept_failures = now, 0

    def _receive(self, now: float) -> None:
        frontend = self.frontend
        assert frontend is not None
        for _ in range(RECEIVE_BATCH):
            try:
                frames = sockets.recv_frames(frontend, _NOBLOCK)  # the poll said it is there
            except zmq.Again:
                return
            try:
                self._accept(frames, now)
            except zmq.ContextTerminated:
                raise
            except Exception as exc:  # a bug: this request is answered, the node goes on
                self._internal_error(envelope_and_body(frames)[0], None, "", exc)
            # Asked before the next read, not tried until zmq.Again: an exception per
            # wake-up costs more.
            if not frontend.getsockopt(_EVENTS) & _POLLIN:
                return

    def _internal_error(self, envelope: list, request_id: Optional[bytes], op: str,
                        exc: Exception) -> None:
        _peer_log.error(("internal", type(exc).__name__), "internal error on %r",
                        op or "a request", exc_info=exc)
        # The type only: the message may hold local paths, which stay in the log.
        message = f"{type(exc).__name__} on {self.cfg.name}; its log has the details"
        self._send(envelope, protocol.error_reply(request_id, op, ErrorCode.INTERNAL, message))

    # -- one request ------------------------------------------------------------------------

    def _accept(self, frames: List[bytes], now: float) -> None:
        """Route one message: refuse it, answer it, or start serving it."""
        envelope, body = envelope_and_body(frames)
        try:
            request = protocol.decode_request(body)
            if not envelope or envelope[-1] != b"":
                raise RemoteProtocolError(
                    "missing the empty delimiter frame: speak REQ, or send an empty frame "
                    "before the request", request_id=request.id, op=request.op)
        except ProtocolError as exc:
            _peer_log.warning(("malformed", exc.code), "refused a malformed request: %s", exc)
            self._send(envelope, protocol.error_reply(exc.request_id, exc.op, exc.code,
                                                      exc.message))
            return
        budget = (request.deadline_ms / 1000.0 if request.deadline_ms is not None
                  else self.cfg.upstream_timeout)
        pending = Pending(envelope, request, now, now + budget - reply_margin(budget))
        refusal = self._refusal(pending)
        if refusal is not None:
            code, message = refusal
            self._log_refusal(request, code, now)
            self._send(envelope, protocol.error_reply(request.id, request.op, code, message))
            return
        if request.op == "list" and request.token is not None:
            try:
                pending.token = tokens.decode_token(request.token, request.path)
            except ProtocolError as exc:
                self._log_refusal(request, exc.code, now)
                self._send(envelope, protocol.error_reply(request.id, request.op, exc.code,
                                                          f"bad token: {exc.message}"))
                return
        if request.op == "ping":
            pending.own = (SourceStatus(self.cfg.name, True, version=__version__,
                                        uptime_s=round(now - self.started, 3),
                                        node_id=self.node_id), [])
        elif pending.deadline <= now:  # no time at all (deadline_ms 0): nothing is started
            pending.own = (SourceStatus(self.cfg.name, True, error=error_dict(
                ErrorCode.TIMEOUT, NO_TIME_LEFT), truncated=True), [])
            pending.position = (None, None, True)  # paged: this source ends here
        elif not self._start_walk(pending, envelope[0]):
            message = (f"{self.cfg.name} is busy: {self.workers.queued} listings are waiting "  # type: ignore[union-attr]
                       "for a worker already; try again")
            self._log_refusal(request, ErrorCode.BUSY, now)
            self._send(envelope, protocol.error_reply(request.id, request.op, ErrorCode.BUSY,
                                                      message))
            return
        self._ask_upstreams(pending, now)
        if pending.complete:
            self._reply(pending)
        else:
            self.pending[id(pending)] = pending

    def _refusal(self, pending: Pending) -> Optional[Tuple[str, str]]:
        """Why the whole request is refused before anything starts, if it is; a listing's
        path is split here, once (``pending.parts``)."""
        request = pending.request
        if self.node_id in request.trail:
            return (ErrorCode.LOOP,
                    f"{self.cfg.name} is already on this request's path: the chain has a loop")
        if request.op == "list":
            try:
                pending.parts = tuple(split_path(request.path))
            except ListingError as exc:
                return exc.code, exc.message
        return None

    def _start_walk(self, pending: Pending, peer: bytes) -> bool:
        """Join the same listing if one is under way, or queue a new one; False: busy."""
        workers = self.workers
        assert workers is not None
        request = pending.request
        if request.paged:
            return self._start_page(pending, peer)
        options = self._options(request)
        if self._kept(pending, options):
            return True
        key = (chunkframes.name_from_wire(request.path), *options)
        walk = workers.find(key)
        if walk is None:
            fair_share = max(1, self.cfg.max_pending // 4)
            # Walks a free worker starts at once do not wait: only the others count
            # against --max-pending (with 0, busy as soon as every worker is taken).
            waiting = workers.queued - workers.idle
            if waiting >= self.cfg.max_pending or workers.queued_for(peer) >= fair_share:
                return False
            walk = Walk(key, request, peer, os.urandom(8))
            workers.enqueue(walk)
        walk.waiters += 1
        pending.walk = walk
        self._walk_waiters.setdefault(walk.token, []).append(pending)
        return True

    def _kept(self, pending: Pending, options: Options, limit: Optional[int] = None) -> bool:
        """The own part from an exact kept listing of at most ``limit`` entries, if there is
        one: found with no file-system call, so the loop serves it, with no worker."""
        cached = self.cache.lookup(pending.parts, options)
        if cached is None or (limit is not None and cached.entries > limit):
            return False
        pending.own = (SourceStatus(self.cfg.name, True, entries=cached.entries,
                                    elapsed_ms=ms_since(pending.arrived)), list(cached.chunks))
        pending.position = (None, None, True)  # paged: the whole listing, in this page
        return True

    def _options(self, request: protocol.Request) -> Options:
        options = Options(all=request.all, stat=request.stat, recursive=request.recursive,
                          max_depth=request.max_depth, glob=request.glob,
                          exclude=request.exclude, targets=request.targets,
                          chunk_entries=self.cfg.chunk_entries,
                          max_entries=self.cfg.max_entries, depth_limit=self.cfg.max_depth)
        if request.paged:  # --max-entries bounds each page; a paged listing has no end
            page = min(request.page_entries or self.cfg.max_entries, self.cfg.max_entries)
            options = options._replace(page_entries=page, max_entries=PAGED_LISTING_LIMIT,
                                       chunk_entries=min(self.cfg.chunk_entries, page))
        return options

    def _walks_done(self) -> None:
        while True:
            try:
                token = self._done.recv(zmq.NOBLOCK)  # type: ignore[union-attr]
            except zmq.Again:
                return
            walk = self.workers.finished(token)  # type: ignore[union-attr]
            if walk is not None and walk.cursor is not None:
                self._page_done(walk)
                continue
            for pending in self._walk_waiters.pop(token, []):
                if walk is not None and walk.status is not None:
                    pending.own = (walk.status, walk.frames)
                if pending.complete:
                    self._finish(pending)

    def _calls_done(self, calls: Sequence[Call]) -> None:
        for call in calls:
            pending = call.owner
            if isinstance(pending, Pending) and pending.complete:
                self._finish(pending)

    def _expire(self, now: float) -> None:
        """Requests at their deadline are answered with what they have."""
        for pending in [p for p in self.pending.values() if p.deadline <= now]:
            for call in pending.calls:
                if not call.done:
                    self.exchange.time_out(call)
            if pending.own is None and pending.cursor is not None:
                pending.own = self._snapshot(pending, now)  # the source ends there
            elif pending.own is None and pending.walk is not None:
                pending.own = pending.walk.snapshot(self.cfg.name, now - pending.arrived)
            self._finish(pending)

    def _finish(self, pending: Pending) -> None:
        if self.pending.pop(id(pending), None) is None:
            return  # answered already
        walk = pending.walk
        if walk is not None:
            walk.waiters -= 1
            waiters = self._walk_waiters.get(walk.token)
            if waiters and pending in waiters:
                waiters.remove(pending)
            if walk.waiters <= 0 and walk.status is None and walk.cursor is None:
                self.workers.abandon(walk)  # type: ignore[union-attr]
            elif walk.waiters <= 0 and walk.cursor is not None and walk.started is not None \
                    and not walk.finished and walk.token in self.workers.running:  # type: ignore[union-attr]
                # A page nobody waits for any more, still being made at a deadline: the
                # requests ended their source there, so the walk is given up.
                self.cursors.drop(walk.cursor)
                self.workers.abandon(walk)  # type: ignore[union-attr]
        self._reply(pending)

    # -- the reply --------------------------------------------------------------------------

    def _reply(self, pending: Pending) -> None:
        try:
            header, chunks = self._composed(pending)
        except Exception as exc:  # a bug: this request is answered, the node goes on
            self._internal_error(pending.envelope, pending.request.id, pending.request.op, exc)
            return
        self._send(pending.envelope, [protocol.encode_header(header), *chunks])
        if header.token is not None and pending.calls:
            try:
                self._fetch_ahead(pending, header, time.monotonic())
            except Exception as exc:  # a bug: the next page is asked for when it is asked
                log.error("fetching pages ahead failed", exc_info=exc)

    def _composed(self, pending: Pending) -> Tuple[ReplyHeader, List[object]]:
        """The reply: this node's source, then each upstream's, and the chunk frames."""
        request = pending.request
        own, frames = pending.own  # type: ignore[misc]
        if self.links:
            own = own._replace(upstreams=len(self.links))
        sources = [own]
        chunks: List[object] = list(frames)
        paged = request.paged and request.op == "list"
        token, cut = self._token(pending) if paged else (None, frozenset())
        for call in pending.calls:
            statuses, relayed = self._absorb(call)
            if call.link is not None and call.link.endpoint in cut:
                statuses = [cut_off(status) for status in statuses]
            sources.extend(statuses)
            chunks.extend(relayed)
        header = ReplyHeader(request.id, request.op, True, None, tuple(sources), len(chunks),
                             token=token, paged=paged)
        self._log(request, sources, pending.arrived)
        return header, chunks

    def _send(self, envelope: list, reply: List[object]) -> None:
        try:
            sockets.send_frames(self.frontend, [*envelope, *reply])  # type: ignore[arg-type]
        except zmq.ZMQError as exc:  # the client is gone (ROUTER drops), or a bug
            _peer_log.warning(("send", exc.errno), "could not send a reply: %s", exc)

    def _log_refusal(self, request: protocol.Request, code: str, arrived: float) -> None:
        log.info("%s %r status=refused code=%s %.1fms", request.op,
                 chunkframes.name_from_wire(request.path), code, ms_since(arrived))

    def _log(self, request: protocol.Request, sources: Sequence[SourceStatus],
             arrived: float) -> None:
        if not log.isEnabledFor(logging.INFO):  # --log-level WARNING: skip the formatting too
            return
        failed = [f"{s.name}:{s.code}" for s in sources if s.failed]
        entries = sum(s.entries for s in sources)
        log.info("%s %r sources=%d entries=%d status=%s%s %.1fms", request.op,
                 chunkframes.name_from_wire(request.path), len(sources), entries,
                 "partial" if failed else "ok", f" failed={','.join(failed)}" if failed else "",
                 ms_since(arrived))



_NO_DESCRIPTORS = {errno.EMFILE, errno.ENFILE}


def _descriptor_limit() -> str:
    try:
        import resource
    except ImportError:
        return "unknown"
    return str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(64):
            pass
    except OSError:  # drained (BlockingIOError), or closed
        pass
