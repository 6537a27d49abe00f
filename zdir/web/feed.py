"""The blocking Client on worker threads, its output handed to the event loop as it is written.

The Client speaks ZeroMQ and blocks; the web server is asyncio. Each request
runs on one of a few worker threads, each of which owns its own Client (a
socket stays with the thread that made it). The worker asks, then writes the
answer with zdir.jsonformat's own writers into a ``Pipe``, whose reading end is an
async iterator the HTTP response streams from: rows reach the browser as each
chunk is decoded, and a browser that goes away stops the writer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Optional, Set

from ..errors import Refused, ZdirError

log = logging.getLogger(__name__)

WORKERS = 4  # requests asked of the node at once (each holds a socket); more wait their turn
PIPE_DEPTH = 8  # texts written ahead of what the HTTP client has taken
TEXT_BYTES = 1 << 16  # small writes (one line each) travel together, up to about this much
STALL_TIMEOUT = 120.0  # a writer blocked this long on a reader that never reads gives up

Ask = Callable[[Any], Any]  # (client) -> answer: the blocking request
Write = Callable[[Any, "Pipe"], None]  # (answer, pipe): writes the answer's text


class ReaderGone(Exception):
    """The HTTP client went away (or stalled): the writer stops."""


_OPEN, _TEXT, _FAIL, _END = range(4)


class Pipe:
    """Text written by one worker thread, read by the event loop: a file for zdir.jsonformat.

    The worker first calls ``opened()`` or ``failed(exc)`` (the request's outcome,
    before any text, so that the HTTP status can still say it), then ``write``s,
    then ``end()``. At most PIPE_DEPTH texts wait unread: a slow browser slows
    the writer, and does not make the web process hold a whole listing.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int = PIPE_DEPTH) -> None:
        self._loop = loop
        self._queue: "asyncio.Queue[tuple]" = asyncio.Queue()
        self._room = threading.Semaphore(depth)
        self._gone = False
        self._buffer: List[str] = []
        self._buffered = 0

    # -- the worker's side ----------------------------------------------------------------------
    def _put(self, kind: int, value: Any = None) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))

    def opened(self) -> None:
        self._put(_OPEN)

    def failed(self, exc: BaseException) -> None:
        self._last_words()
        self._put(_FAIL, exc)

    def end(self) -> None:
        self._last_words()
        self._put(_END)

    def _last_words(self) -> None:
        try:
            self._hand_over()  # what was written before the end is still the answer
        except ReaderGone:
            pass

    def write(self, text: str) -> int:
        """Take a text; hands it over once TEXT_BYTES are waiting (a batch is one write)."""
        self._buffer.append(text)
        self._buffered += len(text)
        if self._buffered >= TEXT_BYTES:
            self._hand_over()
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def _hand_over(self) -> None:
        """Pass the buffered text to the loop; blocks while PIPE_DEPTH texts wait unread."""
        if not self._buffered:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        if self._gone or not self._room.acquire(timeout=STALL_TIMEOUT) or self._gone:
            raise ReaderGone()
        self._put(_TEXT, text)

    def abandon(self) -> None:
        """No one will read: a writer waiting for room stops (at shut-down)."""
        self._gone = True
        self._room.release()

    def flush(self) -> None:
        """Nothing is buffered here (zdir.jsonformat may call it)."""

    # -- the event loop's side ------------------------------------------------------------------
    async def outcome(self) -> Optional[BaseException]:
        """Wait for the request's outcome: None when it was answered, else the error."""
        kind, value = await self._queue.get()
        if kind == _OPEN:
            return None
        if kind == _FAIL:
            return value
        return RuntimeError("the worker ended without an answer")  # a bug: say so, not hang

    async def texts(self) -> AsyncIterator[bytes]:
        """The written texts as bytes, until the worker ends; stops the worker if abandoned."""
        try:
            while True:
                kind, value = await self._queue.get()
                if kind == _TEXT:
                    self._room.release()
                    yield value.encode("utf-8", "surrogateescape")
                elif kind == _FAIL:
                    # Too late for a status: the body just ends, and a reader knows it was
                    # cut short (NDJSON's last line is missing, JSON does not parse).
                    log.warning("answer cut short: %s: %s", type(value).__name__, value)
                elif kind == _END:
                    return
        finally:
            self.abandon()  # wake a writer waiting for room: it sees the reader gone and stops


class Workers:
    """Runs each request on a worker thread that keeps its own Client between requests."""

    def __init__(self, connect: Callable[[], Any], workers: int = WORKERS) -> None:
        self._connect = connect
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="zdir-web")
        self._lock = threading.Lock()
        self._clients: Dict[int, Any] = {}  # worker thread -> its Client
        self._running: Set[int] = set()  # workers inside a request
        self._pipes: "weakref.WeakSet[Pipe]" = weakref.WeakSet()
        self._closing = False

    def start(self, ask: Ask, write: Write) -> Pipe:
        """Run ``ask`` then ``write`` on a worker; read the outcome and the text from the Pipe."""
        pipe = Pipe(asyncio.get_running_loop())
        self._pipes.add(pipe)
        self._executor.submit(self._run, pipe, ask, write)
        return pipe

    def _run(self, pipe: Pipe, ask: Ask, write: Write) -> None:
        me = threading.get_ident()
        with self._lock:
            self._running.add(me)
            closing = self._closing
        try:
            if closing:  # close() may be closing this thread's client
                pipe.failed(ZdirError("zdir-web is stopping", code="busy"))
                return
            answer = ask(self._client(me))
            pipe.opened()
            write(answer, pipe)
        except Refused as exc:
            pipe.failed(exc)  # an answer: the client is fine for the next request
        except ReaderGone:
            self._drop(me)  # a reply may be left half read
        except BaseException as exc:  # a worker must always end its pipe
            if not isinstance(exc, ZdirError):
                log.exception("request failed")
            self._drop(me)  # no usable answer: the next request starts on a fresh client
            pipe.failed(exc)
        finally:
            pipe.end()
            with self._lock:
                self._running.discard(me)
                closing = self._closing
            if closing:
                self._drop(me)

    def _client(self, me: int) -> Any:
        with self._lock:
            client = self._clients.get(me)
        if client is None:
            client = self._connect()
            with self._lock:
                self._clients[me] = client
        return client

    def _drop(self, me: int) -> None:
        with self._lock:  # whoever pops a client closes it, once
            client = self._clients.pop(me, None)
        if client is not None:
            client.close()

    def close(self) -> None:
        """Stop: idle Clients close now, busy ones when their request ends (each is bounded).

        A socket is closed by the thread using it, or once no thread uses it.
        """
        with self._lock:
            self._closing = True
            idle = [me for me in self._clients if me not in self._running]
        for pipe in list(self._pipes):
            pipe.abandon()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for me in idle:
            self._drop(me)
