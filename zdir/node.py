"""The serving node shared by both servers: receive, list locally, ask upstreams, merge, reply.

Layout (the ZeroMQ Guide's load-balancing broker, kept REQ/REP on the outside)::

    clients (REQ) --> ROUTER frontend --[broker loop]--> ROUTER backend --> REP workers
                                                                              |  own REQ
                                                                              v  sockets
                                                                          upstreams

The broker hands each request to an idle worker (never queueing behind a slow
one), queues up to ``max_pending`` more and answers ``busy`` beyond that. Each
worker owns a ``Handler``: one request in, one reply out, never an exception.

A request whose own part needs no listing (a ping, a refusal, a listing still in
the cache) is served by the broker's thread itself, which then waits on the
upstreams among its other sockets: handing a small request to a worker and back
costs more than the rest of it. It still takes a worker's slot while it waits.
"""

from __future__ import annotations

import collections
import logging
import struct
import threading
import time
import uuid
from typing import (TYPE_CHECKING, Deque, Dict, List, NamedTuple, Optional, Sequence, Tuple,
                    Union)

import zmq

from . import __version__, config, protocol
from .errors import ListingError, ProtocolError, RemoteProtocolError, UsageError
from .lister import DEFAULT_CHUNK_ENTRIES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES, DirListing
from .cache import ListingCache
from .lister import Options, split_path
from .protocol import ErrorCode, ReplyHeader, SourceStatus, error_dict
from .reliable import Exchange, Outcome, Peer, SocketSetup

if TYPE_CHECKING:  # keys imports zmq.auth, which only CURVE deployments need
    from .keys import CurveServer, Gatekeeper

log = logging.getLogger(__name__)

POLL_INTERVAL_MS = 100  # how often the broker looks at the stop flag
SHUTDOWN_GRACE = 1.0  # seconds the workers get to close their sockets on stop
_ARRIVAL_FORMAT = "=d"  # broker to worker, in-process: time.monotonic() at arrival


# The lister's options that a request sets; the rest are this node's limits.
_ASKED_BY_CLIENT = ("all", "stat", "recursive", "max_depth", "glob", "exclude")


class NodeConfig(NamedTuple):
    """Everything a node needs; built from flags by ``main``, or directly by tests."""

    name: str
    root: str
    bind: str
    upstreams: Tuple[str, ...] = ()
    workers: int = config.WORKERS
    upstream_timeout: float = config.UPSTREAM_TIMEOUT
    upstream_retries: int = config.UPSTREAM_RETRIES
    max_pending: int = config.MAX_PENDING
    max_request_bytes: int = config.MAX_REQUEST_BYTES
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_depth: int = DEFAULT_MAX_DEPTH
    chunk_entries: int = DEFAULT_CHUNK_ENTRIES
    cache_bytes: int = config.CACHE_MB << 20
    stat_ttl: float = config.STAT_TTL
    curve_server: Optional["CurveServer"] = None  # CURVE and ZAP on the listening socket
    upstream_setup: Optional[SocketSetup] = None  # CURVE on the upstream sockets


def reply_margin(budget: float) -> float:
    """Time kept back from the upstreams to build and send our own reply."""
    return min(0.25, 0.1 * budget)


class Handler:
    """A node's core, one per worker: it owns that worker's upstream sockets."""

    def __init__(self, cfg: NodeConfig, context: zmq.Context, node_id: str, started: float,
                 cache: ListingCache, upstream_names: Dict[str, str]):
        self.cfg = cfg
        self.node_id = node_id
        self.started = started
        self.cache = cache
        # Shared by every worker: an upstream that stops answering keeps the name it
        # last gave, whichever worker it gave it to.
        self.upstream_names = upstream_names
        self.context = context
        self.peers = self.new_peers()

    def new_peers(self) -> List[Peer]:
        """One REQ peer per upstream, for one request at a time (sockets open when used)."""
        return [Peer(self.context, ep, setup=self.cfg.upstream_setup) for ep in self.cfg.upstreams]

    def close(self) -> None:
        for peer in self.peers:
            peer.close()

    def handle(self, frames: Sequence[bytes], arrived: float) -> List[object]:
        """Answer one request. Always returns a reply: a REP socket must always reply.

        ``arrived`` is when the node received it (``time.monotonic()``): the sender's
        deadline runs from then, so time spent queued for a worker counts against it.
        """
        started = arrived
        try:
            request = protocol.decode_request(frames)
        except ProtocolError as exc:
            log.warning("refused a malformed request: %s", exc)
            return protocol.error_reply(exc.request_id, "", exc.code, exc.message)
        try:
            job = self.begin(request, started, self.peers)
            if isinstance(job, list):
                return job
            if job.exchange is not None:
                job.exchange.wait()
            return self.finish(job)
        except zmq.ContextTerminated:  # the node is stopping
            raise
        except Exception as exc:  # a bug: log it, answer, keep serving
            _reset(self.peers)  # a request may be out on some: they cannot send again
            return self.internal_error(request, exc)

    def begin(self, request: protocol.Request, started: float, peers: Sequence[Peer], *,
              cached_only: bool = False) -> Union[List[object], "Job", None]:
        """Refuse the request (a whole reply), or start it: ask the upstreams, list the root.

        With ``cached_only`` nothing is started (None) unless the root's part needs no
        listing (a ping, a refusal, the cache): then the node's own loop serves the
        request, and only waits on the upstreams, without handing it to a worker.
        """
        if self.node_id in request.trail:
            message = f"{self.cfg.name} is already on this request's path: the chain has a loop"
            return self._refuse(request, ErrorCode.LOOP, message, started)
        if request.op == "list":
            try:
                split_path(request.path)
            except ListingError as exc:
                return self._refuse(request, exc.code, exc.message, started)
        if cached_only:
            local = self._local(request, started, cached_only=True)
            if local is None:
                return None
            exchange = self._ask_upstreams(request, started, peers)
        else:
            exchange = self._ask_upstreams(request, started, peers)  # they work meanwhile
            local = self._local(request, started)
        return Job(request, started, exchange, *local)  # type: ignore[misc]

    def finish(self, job: "Job") -> List[object]:
        """The reply to a started request whose upstreams have all answered or failed."""
        request, sources, chunks = job.request, [job.own], job.chunks
        if job.exchange is not None:
            for outcome in job.exchange.outcomes():
                statuses, relayed = self._absorb(outcome, request.id)
                sources.extend(statuses)
                chunks.extend(relayed)
        header = ReplyHeader(request.id, request.op, True, None, tuple(sources), len(chunks))
        self._log(request, sources, job.started)
        return [protocol.encode_header(header), *chunks]

    def internal_error(self, request: protocol.Request, exc: Exception) -> List[object]:
        """A bug: log it, answer, keep serving."""
        log.error("internal error on %s %r", request.op, request.path, exc_info=exc)
        # The type only: the message may hold local paths, which stay in the log.
        message = f"{type(exc).__name__} on {self.cfg.name}; its log has the details"
        return protocol.error_reply(request.id, request.op, ErrorCode.INTERNAL, message)

    def _budget(self, request: protocol.Request) -> float:
        if request.deadline_ms is not None:
            return request.deadline_ms / 1000.0
        return self.cfg.upstream_timeout * (self.cfg.upstream_retries + 1) + 0.5

    def _ask_upstreams(self, request: protocol.Request, started: float,
                       peers: Sequence[Peer]) -> Optional[Exchange]:
        if not peers:
            return None
        budget = self._budget(request)
        onward = request._replace(trail=request.trail + (self.node_id,))

        encoded: Dict[int, List[bytes]] = {}  # upstreams given the same budget share one

        def build(attempt_budget: float) -> List[bytes]:
            deadline_ms = int(attempt_budget * 1000)
            if deadline_ms not in encoded:
                encoded[deadline_ms] = [
                    protocol.encode_request(onward._replace(deadline_ms=deadline_ms))]
            return encoded[deadline_ms]

        exchange = Exchange(
            peers,
            build,
            timeout=self.cfg.upstream_timeout,
            retries=self.cfg.upstream_retries,
            deadline=started + budget - reply_margin(budget),
        )
        exchange.send()
        return exchange

    def _local(self, request: protocol.Request, started: float, *,
               cached_only: bool = False) -> Optional[Tuple[SourceStatus, List[object]]]:
        """This node's own source: its status and chunk frames (None: not in the cache)."""
        name = self.cfg.name
        if request.op == "ping":
            status = SourceStatus(name, True, version=__version__,
                                  uptime_s=round(time.monotonic() - self.started, 3))
            return status, []
        options = Options(
            **{field: getattr(request, field) for field in _ASKED_BY_CLIENT},
            chunk_entries=self.cfg.chunk_entries,
            max_entries=self.cfg.max_entries,
            depth_limit=self.cfg.max_depth,
        )
        try:
            listing = DirListing(self.cfg.root, request.path, options)
            listed = self._chunks(listing, options, cached_only)
            if listed is None:
                listing.close()
                return None
            chunks, entries = listed
        except ListingError as exc:
            return SourceStatus(name, False, error=error_dict(exc.code, exc.message),
                                elapsed_ms=_ms_since(started)), []
        warning = listing.warning
        status = SourceStatus(
            name,
            True,
            error=error_dict(warning.code, warning.message) if warning else None,
            entries=entries,
            truncated=listing.truncated,
            elapsed_ms=_ms_since(started),
        )
        return status, chunks

    def _chunks(self, listing: DirListing, options: Options,
                cached_only: bool = False) -> Optional[Tuple[List[object], int]]:
        """The listing's chunk frames and entry count, kept while the directory is unchanged.

        Only what a one-level listing's stamp can vouch for is cached (see cache.py).
        With ``cached_only``, None when they are not in the cache.
        """
        name = self.cfg.name
        if options.recursive:
            if cached_only:
                return None
            return [protocol.encode_chunk(name, chunk) for chunk in listing], listing.entries
        began = time.time()
        stamp = listing.stamp()
        key = (stamp[0], stamp[1], options.all, options.stat, options.glob, options.exclude)
        kept = self.cache.get(key, stamp)
        if kept is not None:
            listing.close()
            return list(kept.chunks), kept.entries
        if cached_only:
            return None
        chunks: List[object] = [protocol.encode_chunk(name, chunk) for chunk in listing]
        if not listing.truncated and self.cache.worth_keeping(stamp, options.stat, began):
            self.cache.put(key, stamp, options.stat, chunks, listing.entries)  # type: ignore[arg-type]
        return chunks, listing.entries

    def _absorb(self, outcome: Outcome,
                request_id: bytes) -> Tuple[List[SourceStatus], List[object]]:
        """Turn one upstream's outcome into source statuses and chunk frames to relay as-is."""
        peer = outcome.peer
        elapsed = round(outcome.elapsed * 1000.0, 3)

        def failed(code: str, message: str) -> Tuple[List[SourceStatus], List[object]]:
            name = self.upstream_names.get(peer.endpoint, peer.endpoint)
            status = SourceStatus(name, False, peer.endpoint, error_dict(code, message),
                                  elapsed_ms=elapsed)
            return [status], []

        if outcome.error is not None:
            return failed(outcome.error.code, outcome.error.message)
        frames = outcome.frames or []
        try:
            header = protocol.decode_reply([f.bytes for f in frames[:1]] + frames[1:], request_id)
        except RemoteProtocolError as exc:
            peer.reset()  # whatever is on the other end, do not trust this socket again
            return failed(ErrorCode.BAD_REPLY, f"{peer.endpoint}: {exc.message}")
        if not header.ok or not header.sources:
            error = header.error or error_dict(ErrorCode.BAD_REPLY, "reply names no source")
            return failed(error["code"], f"{peer.endpoint}: {error['message']}")
        first = header.sources[0]
        self.upstream_names[peer.endpoint] = peer.name = first.name
        if first.endpoint is None:
            first = first._replace(endpoint=peer.endpoint)
        return [first, *header.sources[1:]], list(frames[1:])

    def _refuse(self, request: protocol.Request, code: str, message: str,
                started: float) -> List[object]:
        """An error reply, logged like every other request: one line each."""
        log.info("%s %r status=refused code=%s %.1fms", request.op,
                 protocol.name_from_wire(request.path), code, _ms_since(started))
        return protocol.error_reply(request.id, request.op, code, message)

    def _log(self, request: protocol.Request, sources: Sequence[SourceStatus],
             started: float) -> None:
        if not log.isEnabledFor(logging.INFO):  # --log-level WARNING: skip the formatting too
            return
        failed = [f"{s.name}:{s.code}" for s in sources if s.failed]
        entries = sum(s.entries for s in sources)
        log.info(
            "%s %r sources=%d entries=%d status=%s%s %.1fms",
            request.op,
            protocol.name_from_wire(request.path),
            len(sources),
            entries,
            "partial" if failed else "ok",
            f" failed={','.join(failed)}" if failed else "",
            _ms_since(started),
        )


class Job:
    """A started request: its upstreams' exchange, and this node's own part of the reply."""

    __slots__ = ("request", "started", "exchange", "own", "chunks", "slot", "envelope", "peers")

    def __init__(self, request: protocol.Request, started: float, exchange: Optional[Exchange],
                 own: SourceStatus, chunks: List[object]) -> None:
        self.request = request
        self.started = started
        self.exchange = exchange
        self.own = own
        self.chunks = chunks
        self.slot = b""  # the worker slot it holds, when the node's loop serves it
        self.envelope: List[object] = []
        self.peers: List[Peer] = []


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 3)


class Node:
    """Owns the context, the listening socket, the broker loop and the worker threads."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.node_id = f"{cfg.name}-{uuid.uuid4().hex[:12]}"
        self.started = time.monotonic()
        self.stopping = threading.Event()
        self.context = zmq.Context()
        self.context.setsockopt(zmq.LINGER, 0)
        self.frontend: Optional[zmq.Socket] = None
        self.backend: Optional[zmq.Socket] = None
        self.endpoint = ""
        self._threads: List[threading.Thread] = []
        self.cache = ListingCache(cfg.cache_bytes, cfg.stat_ttl)
        self.upstream_names: Dict[str, str] = {}
        # The broker thread's own Handler, jobs and upstream sockets (see _start).
        self._inline = Handler(cfg, self.context, self.node_id, self.started, self.cache,
                               self.upstream_names)
        self._jobs: List[Job] = []
        self._peer_sets: List[List[Peer]] = []
        self._gatekeeper: Optional["Gatekeeper"] = None

    def bind(self) -> str:
        """Bind the listening socket and start the workers; returns the real endpoint."""
        frontend = self.context.socket(zmq.ROUTER)
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
        self.backend = self.context.socket(zmq.ROUTER)
        self.backend.setsockopt(zmq.ROUTER_MANDATORY, 1)
        for index in range(self.cfg.workers):
            self._start_worker(index)
        return self.endpoint

    def _start_worker(self, index: int) -> None:
        address = f"inproc://{self.node_id}-worker-{index}"
        ready = threading.Event()
        thread = threading.Thread(
            target=self._work, args=(address, ready), name=f"worker-{index}", daemon=True
        )
        thread.start()
        ready.wait()
        # CONNECT_ROUTING_ID names the worker before the first message, so the
        # broker can address it at once (inproc connects synchronously).
        self.backend.setsockopt(zmq.CONNECT_ROUTING_ID, address.encode())
        self.backend.connect(address)
        self._threads.append(thread)

    def _work(self, address: str, ready: threading.Event) -> None:
        handler = Handler(self.cfg, self.context, self.node_id, self.started, self.cache,
                          self.upstream_names)
        sock = self.context.socket(zmq.REP)
        try:
            sock.bind(address)
            ready.set()
            while True:
                stamp, *frames = sock.recv_multipart(copy=False)
                arrived = struct.unpack(_ARRIVAL_FORMAT, stamp.bytes)[0]
                sock.send_multipart(handler.handle(frames, arrived), copy=False)
        except zmq.ContextTerminated:
            pass
        finally:
            handler.close()
            sock.close(linger=0)

    def serve(self) -> None:
        """Run the broker until ``stop()``; then close everything, LINGER 0."""
        frontend, backend = self.frontend, self.backend
        idle: Deque[bytes] = collections.deque(
            f"inproc://{self.node_id}-worker-{i}".encode() for i in range(self.cfg.workers)
        )
        pending: Deque[Tuple[Message, float]] = collections.deque()
        poller = zmq.Poller()
        poller.register(frontend, zmq.POLLIN)
        poller.register(backend, zmq.POLLIN)
        try:
            while not self.stopping.is_set():
                events = dict(self._poll(poller))
                if self._jobs:
                    self._advance_jobs(events, idle, pending)
                if backend in events:
                    worker, *reply = backend.recv_multipart(copy=False)
                    frontend.send_multipart(reply, copy=False)
                    self._free(worker.bytes, idle, pending)
                if frontend in events:
                    self._dispatch(frontend.recv_multipart(copy=False), idle, pending)
        finally:
            self._shutdown()

    def _poll(self, poller: zmq.Poller) -> List[Tuple[zmq.Socket, int]]:
        """Wait for a message, or for the next timeout of a request served here."""
        if not self._jobs:
            return poller.poll(POLL_INTERVAL_MS)
        now = time.monotonic()
        wakes = [w for w in (job.exchange.wakes_at() for job in self._jobs) if w is not None]
        timeout = min([POLL_INTERVAL_MS, *((w - now) * 1000.0 for w in wakes)])
        everything = zmq.Poller()
        for sock in (self.frontend, self.backend):
            everything.register(sock, zmq.POLLIN)
        for job in self._jobs:
            for sock in job.exchange.sockets():
                everything.register(sock, zmq.POLLIN)
        return everything.poll(max(0.0, timeout))

    def _advance_jobs(self, events: dict, idle: Deque[bytes],
                      pending: Deque[Tuple[Message, float]]) -> None:
        """Take the upstreams' replies to requests served here; answer those complete."""
        now = time.monotonic()
        for job in list(self._jobs):
            exchange = job.exchange
            try:
                for sock in exchange.sockets():
                    if sock in events:
                        exchange.receive(sock)
                exchange.advance(now)
                reply = self._finish(job) if exchange.done else None
            except zmq.ContextTerminated:
                raise
            except Exception as exc:  # a bug, or a socket that failed: this request alone
                reply = self._inline.internal_error(job.request, exc)
                _reset(job.peers)
            if reply is not None:
                self._jobs.remove(job)
                self._answer(job.envelope, reply)
                self._peer_sets.append(job.peers)
                self._free(job.slot, idle, pending)

    def _dispatch(self, frames: list, idle: Deque[bytes],
                  pending: Deque[Tuple[Message, float]]) -> None:
        """Route one client message: to a worker, to the queue, or straight back refused."""
        message = _split_envelope(frames)
        if message is None:
            self._refuse_framing(frames)
            return
        arrived = time.monotonic()
        if idle:
            if not self._start(message, arrived, idle[0]):
                idle.popleft()
        elif len(pending) < self.cfg.max_pending:
            pending.append((message, arrived))
        else:
            envelope, body = message
            reply = protocol.error_reply(_peek_id(body), "", ErrorCode.BUSY,
                                         f"{self.cfg.name} is busy: {len(pending)} requests "
                                         "are waiting already; try again")
            self._answer(envelope, reply)

    def _free(self, slot: bytes, idle: Deque[bytes], pending: Deque[Tuple[Message, float]]) -> None:
        """A worker slot is free again: it takes the next queued request, or waits."""
        while pending:
            message, arrived = pending.popleft()
            if not self._start(message, arrived, slot):
                return
        idle.append(slot)

    def _start(self, message: Message, arrived: float, slot: bytes) -> bool:
        """Serve a request in the slot of one worker; False if the slot is taken, True if free.

        When this node's own part needs no listing (a ping, a refusal, or a listing in
        the cache), it is served here, in the broker's thread: no hand-over to a worker
        and back, which is most of the cost of a small request. Its upstreams are then
        waited on by this loop, and the request holds the slot until they answer, so
        ``--workers`` still bounds the requests served at once. Anything else goes to
        the worker, with its arrival time as the first frame after the envelope.
        The price: checking the cache opens and stats the path here, so a root on a
        filesystem that hangs (a dead NFS server) stalls the broker, not only workers.
        """
        served = self._serve_here(message, arrived, slot)
        if served is None:
            envelope, body = message
            stamped = [*envelope, struct.pack(_ARRIVAL_FORMAT, arrived), *body]
            self.backend.send_multipart([slot, *stamped], copy=False)
            return False
        return served

    def _serve_here(self, message: Message, arrived: float, slot: bytes) -> Optional[bool]:
        """Answer now (True), or start a job that waits on upstreams (False), or None."""
        envelope, body = message
        try:
            request = protocol.decode_request([f.bytes for f in body])
        except ProtocolError:
            return None  # the worker refuses it, and logs it, as for every request
        peers = self._peer_sets.pop() if self._peer_sets else self._inline.new_peers()
        try:
            job = self._inline.begin(request, arrived, peers, cached_only=True)
        except zmq.ContextTerminated:
            raise
        except Exception as exc:
            _reset(peers)  # a request may be out on some: their sockets cannot send again
            self._peer_sets.append(peers)
            self._answer(envelope, self._inline.internal_error(request, exc))
            return True
        if job is None or isinstance(job, list) or job.exchange is None:
            self._peer_sets.append(peers)
            if job is None:
                return None
            self._answer(envelope, job if isinstance(job, list) else self._finish(job))
            return True
        job.slot, job.envelope, job.peers = slot, envelope, peers
        self._jobs.append(job)
        return False

    def _finish(self, job: Job) -> List[object]:
        try:
            return self._inline.finish(job)
        except Exception as exc:
            return self._inline.internal_error(job.request, exc)

    def _answer(self, envelope: list, reply: List[object]) -> None:
        self.frontend.send_multipart([*envelope, *reply], copy=False)

    def _refuse_framing(self, frames: list) -> None:
        """Answer, in the sender's own framing, a message no REP worker could take.

        A REP socket silently drops a message with nothing after the delimiter, and
        the worker it was handed to would then never reply: such messages stay here.
        """
        delimiter = _delimiter_index(frames)
        if delimiter is not None:
            envelope = frames[:delimiter + 1]
            message = f"a request is exactly one frame, got {len(frames) - delimiter - 1}"
        else:  # a DEALER that skipped the empty delimiter
            envelope = [frames[0]]
            message = ("missing the empty delimiter frame: speak REQ, or send an empty "
                       "frame before the request")
        reply = protocol.error_reply(None, "", ErrorCode.BAD_REQUEST, message)
        self.frontend.send_multipart([*envelope, *reply], copy=False)

    def stop(self) -> None:
        self.stopping.set()

    def _shutdown(self) -> None:
        for sock in (self.frontend, self.backend):
            if sock is not None:
                sock.close(linger=0)
        self._inline.close()
        for peers in [*self._peer_sets, *(job.peers for job in self._jobs)]:
            for peer in peers:
                peer.close()
        self._stop_gatekeeper()
        # Terminating the context wakes every worker blocked in ZeroMQ with ETERM;
        # a worker deep in a huge scandir is not waited for beyond the grace period.
        closer = threading.Thread(target=self.context.term, daemon=True)
        closer.start()
        closer.join(SHUTDOWN_GRACE)

    def _stop_gatekeeper(self) -> None:
        """The ZAP thread's sockets must close before the context can terminate."""
        if self._gatekeeper is not None:
            self._gatekeeper.stop()
            self._gatekeeper = None


def _reset(peers: Sequence[Peer]) -> None:
    for peer in peers:
        peer.reset()


Message = Tuple[list, list]  # (envelope: routing frames and the empty delimiter, body)


def _delimiter_index(frames: list) -> Optional[int]:
    for index, frame in enumerate(frames):
        if not frame.bytes:
            return index
    return None


def _split_envelope(frames: list) -> Optional[Message]:
    """Split as REP does: every frame up to the first empty one is the return address.

    More than one routing frame arrives when the client sits behind a proxy. None
    when there is no delimiter, or not exactly one frame after it: a REP worker
    would drop such a message without a word, so the broker answers it itself.
    """
    delimiter = _delimiter_index(frames)
    if delimiter is None or delimiter == 0 or len(frames) != delimiter + 2:
        return None
    return frames[:delimiter + 1], frames[delimiter + 1:]


def _peek_id(frames: list) -> Optional[bytes]:
    try:
        protocol.decode_request([f.bytes for f in frames])
    except ProtocolError as exc:
        return exc.request_id
    except Exception:
        return None
    return protocol.unpack(frames[0].bytes, "request").get("id")
