"""The Python API: ``Client`` and the replies it returns (the ``zdir`` command is zdir/cli.py)."""

from __future__ import annotations

import os
import time
from typing import Dict, Iterator, List, NamedTuple, Optional
from typing import Sequence, Tuple, Union

import zmq

from . import chunkframes, config, protocol
from .errors import Refused
from .errors import Unreachable
from .chunkframes import name_from_wire
from .protocol import ErrorCode, SourceStatus
from .entries import Entries, Entry
from .pages import Pages
from .exchange import Exchange
from .reliable import Call, Link


class Listing(NamedTuple):
    """Merged entries (in arrival order until sorted) and how every source fared."""

    entries: Entries
    sources: Tuple[SourceStatus, ...]

    @property
    def failed(self) -> List[SourceStatus]:
        """Sources that failed or were cut short: the listing is partial."""
        return [s for s in self.sources if s.failed]

    @property
    def complete(self) -> bool:
        return not self.failed


class Reply:
    """A reply whose header is read and whose chunks are decoded only when asked for.

    Consume it once, in one of three ways: iterate it for ``Entry`` tuples, chunk
    by chunk; ``batches()`` for one ``Entries`` per chunk; or ``entries()`` for
    all of them in one ``Entries``.
    """

    def __init__(self, header: protocol.ReplyHeader, frames: list) -> None:
        self.header = header
        self.sources = header.sources
        self._frames = frames

    def chunks(self) -> Iterator[Tuple[str, chunkframes.Chunk]]:
        """(source, chunk) pairs; each frame is released once decoded."""
        frames, self._frames = self._frames, []
        frames.reverse()
        while frames:
            yield chunkframes.decode_chunk(frames.pop().bytes)

    def batches(self) -> Iterator[Entries]:
        """The entries of each chunk as it is decoded: output can start before the last."""
        for source, chunk in self.chunks():
            yield Entries.from_chunk(source, chunk)

    def entries(self) -> Entries:
        """Every entry, in arrival order: each source's together, sources in header order."""
        return Entries.from_chunks(self.chunks())

    def __iter__(self) -> Iterator[Entry]:
        for batch in self.batches():
            yield from batch


class Client:
    """Ask a zdir server (A or B) for listings.

    ``timeout`` is the whole wait for one call, as curl's ``--max-time``: it travels as
    the request's ``deadline_ms`` and every hop works within what is left of it. A
    server that is not there, refuses our key or stops answering heartbeats is
    reported within about two seconds, whatever the timeout (see zdir/reliable.py).

    >>> with Client("tcp://127.0.0.1:5555", timeout=2) as c:   # doctest: +SKIP
    ...     listing = c.list("docs")
    ...     names = sorted(e.name for e in listing.entries)
    """

    def __init__(
        self,
        endpoint: str = config.DEFAULT_SERVER,
        *,
        timeout: float = config.CLIENT_TIMEOUT,
        retries: int = config.CLIENT_RETRIES,
        server_key: Optional[str] = None,
        curve_secret: Optional[str] = None,
        max_reply_bytes: int = config.MAX_REPLY_BYTES,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        setup = None
        if server_key or curve_secret:
            from .keys import client_security  # only CURVE users pay for zmq.auth

            setup = client_security(curve_secret, server_key)  # before the context: may raise
        self._context = zmq.Context()
        self._exchange = Exchange()
        self._link = Link(self._context, endpoint, setup=setup, max_reply_bytes=max_reply_bytes)
        self._exchange.add(self._link)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (LINGER 0) and the context: never hangs, even if the server is gone."""
        self._exchange.close()
        self._context.term()

    def send(self, op: str, path: Union[str, bytes] = "", **options: object) -> Reply:
        """Send one request and return its reply, header checked, chunks not yet decoded.

        A ``busy`` server is asked again after a pause that grows, with jitter, for as
        long as the deadline allows (``exchange.Exchange``).
        """
        if isinstance(path, str):
            path = chunkframes.name_to_wire(path)
        call = self._call(op, path, options, time.monotonic() + self.timeout)
        return self._reply(call)

    def begin(self, op: str, path: Union[str, bytes] = "", **options: object) -> Call:
        """Send one request and return at once; ``complete`` waits for its reply.

        For pipelining: a paged listing asks for its next page before it reads this one.
        """
        if isinstance(path, str):
            path = chunkframes.name_to_wire(path)
        now = time.monotonic()
        return self._start(op, path, options, now + self.timeout)

    def complete(self, call: Call) -> Reply:
        """The reply to a call from ``begin`` (asked again, as ``send`` does, if busy)."""
        if not call.done:
            self._exchange.wait_for(call)
        if call.error is not None:
            raise call.error
        return self._reply(call)

    def _reply(self, call: Call) -> Reply:
        header = call.header
        assert header is not None
        if header.code == ErrorCode.BUSY:  # at the deadline still
            raise Unreachable(f"{self.endpoint}: still busy at the deadline after "
                              f"{call.busy_answers + 1} attempts: {header.error['message']}",  # type: ignore[index]
                              endpoint=self.endpoint, code=ErrorCode.BUSY)
        if not header.ok:
            error = header.error or {"code": ErrorCode.INTERNAL.value, "message": "refused"}
            raise Refused(error["message"], code=error["code"])
        sources = list(header.sources)
        if sources and sources[0].endpoint is None:
            sources[0] = sources[0]._replace(endpoint=self.endpoint)
        return Reply(header._replace(sources=tuple(sources)), call.chunks)

    def _call(self, op: str, path: Union[str, bytes], options: Dict[str, object],
              deadline: float) -> Call:
        """One request and its reply (or the error that ended it) within ``deadline``."""
        call = self._start(op, path, options, deadline)
        if not call.done:
            self._exchange.wait_for(call)
        if call.error is not None:
            raise call.error
        return call

    def _start(self, op: str, path: Union[str, bytes], options: Dict[str, object],
               deadline: float) -> Call:
        now = time.monotonic()
        request_id = os.urandom(8)
        # The server learns how long we will wait, and every hop works within it.
        request = protocol.Request(op, request_id, path,  # type: ignore[arg-type]
                                   deadline_ms=max(0, int((deadline - now) * 1000)), **options)
        call = Call(request_id, [protocol.encode_request(request)], deadline,
                    retries=self.retries)
        self._exchange.start(self._link, call, now)
        return call

    def stream(self, path: Union[str, bytes] = "", *, all: bool = False, stat: bool = True,
               recursive: bool = False, max_depth: Optional[int] = None,
               glob: Sequence[str] = (), exclude: Sequence[str] = (),
               targets: bool = False, page_entries: Optional[int] = None,
               page_ms: Optional[int] = None, ordered: bool = True) -> Union[Reply, Pages]:
        """Like ``list`` but entries are decoded as they are iterated.

        Without ``page_entries`` or ``page_ms``: one reply (a ``Reply``), each source's
        entries together. With them: a ``Pages``, asked for page by page (at most
        ``page_entries`` entries per source per page, or what ``page_ms`` gave), whose
        entries come merged across sources in the listing order (``lister.order_key``)
        as pages arrive, the next page already asked for. ``timeout`` is then per page.
        ``ordered=False``: each page's entries as they arrive, not merged (cheaper).
        """
        options = dict(all=all, stat=stat, recursive=recursive or max_depth is not None,
                       max_depth=max_depth, glob=tuple(glob), exclude=tuple(exclude),
                       targets=targets)
        if page_entries is None and page_ms is None:
            reply = self.send("list", path, **options)
            _check_found(reply.sources, path)
            return reply
        if isinstance(path, str):
            path = chunkframes.name_to_wire(path)
        pages = Pages(self, path, options, page_entries, page_ms, ordered=ordered)
        _check_found(pages.sources, path)
        return pages

    def list(self, path: Union[str, bytes] = "", *, all: bool = False, stat: bool = True,
             recursive: bool = False, max_depth: Optional[int] = None,
             glob: Sequence[str] = (), exclude: Sequence[str] = (),
             targets: bool = False) -> Listing:
        """All entries of PATH (relative to every server's root) and every source's status.

        ``targets``: symlinks carry their target (``Entry.target``) when it stays inside
        the root, as ``ls -l`` shows it. Raises Refused when the request is refused or no
        source has PATH, and Unreachable when the server does not answer.
        """
        reply = self.stream(path, all=all, stat=stat, recursive=recursive,
                            max_depth=max_depth, glob=glob, exclude=exclude, targets=targets)
        return Listing(reply.entries(), reply.sources)

    def ping(self) -> Tuple[SourceStatus, ...]:
        """Name, version and uptime of the server and of every node behind it."""
        return self.send("ping").sources


def _check_found(sources: Sequence[SourceStatus], path: Union[str, bytes]) -> None:
    """A path that no source has is an error; one that some lack is not."""
    if any(s.ok or s.failed for s in sources):
        return
    shown = name_from_wire(path) if path else "."
    reasons = "; ".join(f"{s.name}: {s.code}: {s.error['message']}" for s in sources if s.error)
    codes = {s.code for s in sources}
    code = codes.pop() if len(codes) == 1 else ErrorCode.NOT_FOUND.value
    verdict = "not found on any source" if code == "not_found" else "refused by every source"
    raise Refused(f"{shown}: {verdict} ({reasons})", code=code)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``zdir`` command (zdir/cli.py), so that ``python -m zdir.client`` runs it."""
    from .cli import main as command

    return command(argv)


if __name__ == "__main__":
    raise SystemExit(main())
