"""The Python API (``Client``) and the ``zdir`` command, a thin layer over it."""

from __future__ import annotations

import os
import sys
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import zmq

from . import config, protocol
from .errors import EXIT_OK, EXIT_PARTIAL, Refused, RemoteProtocolError, ZdirError
from .errors import exit_code
from .protocol import ENTRY_TYPES, ErrorCode, SourceStatus, name_from_wire
from .reliable import Peer, request


class Entry(NamedTuple):
    """One directory entry from one source.

    ``name`` is a str; a name that is not valid UTF-8 holds surrogate escapes, and
    ``os.fsencode(name)`` (POSIX) gives back its exact bytes. ``size``, ``mtime``
    (seconds since the epoch) and ``mode`` (``st_mode``) are None when not asked for.
    """

    name: str
    type: str
    size: Optional[int]
    mtime: Optional[float]
    mode: Optional[int]
    source: str


class Listing(NamedTuple):
    """Merged entries and how every source fared."""

    entries: List[Entry]
    sources: Tuple[SourceStatus, ...]

    @property
    def failed(self) -> List[SourceStatus]:
        """Sources that failed or were cut short: the listing is partial."""
        return [s for s in self.sources if s.failed]

    @property
    def complete(self) -> bool:
        return not self.failed


class Reply:
    """A reply whose header is read and whose chunks are decoded only when iterated."""

    def __init__(self, header: protocol.ReplyHeader, frames: list) -> None:
        self.header = header
        self.sources = header.sources
        self._frames = frames

    def chunks(self) -> Iterator[Tuple[str, protocol.Chunk]]:
        """(source, chunk) pairs; each frame is released once decoded."""
        frames, self._frames = self._frames, []
        frames.reverse()
        while frames:
            yield protocol.decode_chunk(frames.pop().bytes)

    def __iter__(self) -> Iterator[Entry]:
        for source, chunk in self.chunks():
            yield from entries_of(source, chunk)


def entries_of(source: str, chunk: protocol.Chunk) -> Iterator[Entry]:
    """The Entry objects held by one chunk."""
    count = len(chunk.names)
    nothing = (None,) * count
    for name, letter, size, mtime, mode in zip(
        chunk.names, chunk.types, chunk.sizes or nothing, chunk.mtimes or nothing,
        chunk.modes or nothing,
    ):
        yield Entry(name_from_wire(name), ENTRY_TYPES[letter], size, mtime, mode, source)


class Client:
    """Ask a zdir server (A or B) for listings.

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
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self._context = zmq.Context()
        setup = None
        if server_key:
            from .keys import client_security

            setup = client_security(curve_secret, server_key)
        elif curve_secret:
            raise ZdirError("--curve-secret needs --server-key (the server's public key)")
        self._peer = Peer(self._context, endpoint, setup=setup, secure=setup is not None)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (LINGER 0) and the context: never hangs, even if the server is gone."""
        self._peer.close()
        self._context.term()

    def send(self, op: str, path: "str | bytes" = "", **options: object) -> Reply:
        """Send one request and return its reply, header checked, chunks not yet decoded."""
        if isinstance(path, str):
            path = protocol.name_to_wire(path)
        request_id = os.urandom(8)
        req = protocol.Request(op, request_id, path, **options)  # type: ignore[arg-type]

        def build(budget: float) -> List[bytes]:
            # The server learns how long we will wait, and spends less on its upstreams.
            return [protocol.encode_request(req._replace(deadline_ms=int(budget * 1000)))]

        frames = request(self._peer, build, timeout=self.timeout, retries=self.retries)
        try:
            header = protocol.decode_reply([frames[0].bytes, *frames[1:]], request_id)
        except RemoteProtocolError as exc:
            self._peer.reset()
            raise RemoteProtocolError(f"{self.endpoint}: {exc.message}", code=exc.code) from exc
        if not header.ok:
            error = header.error or {"code": ErrorCode.INTERNAL.value, "message": "refused"}
            raise Refused(error["message"], code=error["code"])
        sources = list(header.sources)
        if sources and sources[0].endpoint is None:
            sources[0] = sources[0]._replace(endpoint=self.endpoint)
        return Reply(header._replace(sources=tuple(sources)), frames[1:])

    def stream(self, path: "str | bytes" = "", *, all: bool = False, stat: bool = True,
               recursive: bool = False, max_depth: Optional[int] = None,
               glob: Sequence[str] = (), exclude: Sequence[str] = ()) -> Reply:
        """Like ``list`` but entries are decoded chunk by chunk as the Reply is iterated."""
        reply = self.send("list", path, all=all, stat=stat,
                          recursive=recursive or max_depth is not None, max_depth=max_depth,
                          glob=tuple(glob), exclude=tuple(exclude))
        _check_found(reply.sources, path)
        return reply

    def list(self, path: "str | bytes" = "", **options: object) -> Listing:
        """All entries of PATH (relative to every server's root) and every source's status.

        Raises Refused when the request is refused or no source has PATH, and
        Unreachable when the server does not answer.
        """
        reply = self.stream(path, **options)  # type: ignore[arg-type]
        return Listing(list(reply), reply.sources)

    def ping(self) -> Tuple[SourceStatus, ...]:
        """Name, version and uptime of the server and of every node behind it."""
        return self.send("ping").sources


def _check_found(sources: Sequence[SourceStatus], path: "str | bytes") -> None:
    """A path that no source has is an error; one that some lack is not."""
    if any(s.ok or s.failed for s in sources):
        return
    shown = name_from_wire(path) if path else "."
    reasons = "; ".join(f"{s.name}: {s.code}: {s.error['message']}" for s in sources if s.error)
    codes = {s.code for s in sources}
    code = codes.pop() if len(codes) == 1 else ErrorCode.NOT_FOUND.value
    verdict = "not found on any source" if code == "not_found" else "refused by every source"
    raise Refused(f"{shown}: {verdict} ({reasons})", code=code)


# -- the command ------------------------------------------------------------------------------

def client_flags() -> config.Flags:
    prog = "python -m zdir.client"
    flags = config.Flags(
        prog,
        "List a directory across zdir servers: the server's own root merged with its upstreams'.",
        epilog=(
            "examples:\n"
            f"  {prog}                          # the merged root, one name per line\n"
            f"  {prog} -l docs                  # long format, with the source of each entry\n"
            f"  {prog} --json | jq '.entries[].name'\n"
            f"  {prog} --server tcp://hosta:5555 --ping\n"
            "\nexit status: 0 complete, 1 refused (bad path, not found anywhere),"
            " 2 usage,\n3 partial (a source failed; stderr names it), 4 server unreachable."
        ),
    )
    flags.parser.add_argument("path", nargs="?", default="", metavar="PATH",
                              help="directory relative to every server's root (default: the root)")
    flags.add("--server", default=config.DEFAULT_SERVER, type=config.endpoint,
              metavar="ENDPOINT", help="server to ask (A, or any node)")
    flags.add("--timeout", default=config.CLIENT_TIMEOUT, type=config.positive_float,
              metavar="SECONDS", help="wait per attempt")
    flags.add("--retries", default=config.CLIENT_RETRIES, type=config.count, metavar="N",
              help="retries on a fresh socket after a timeout")
    flags.add("--server-key", metavar="FILE", help="server's public key file: turns CURVE on")
    flags.add("--curve-secret", metavar="FILE", help="this client's secret key file (CURVE)")
    flags.switch("-a", "--all", help="include names starting with '.'")
    flags.switch("-l", help="long format: mode, size, mtime, source, name")
    flags.switch("--json", help='one JSON document {"entries": [...], "sources": [...]}')
    flags.switch("--ping", help="ask every node for its name, version, uptime and upstreams")
    flags.switch("-R", "--recursive", help="list sub-directories too (names relative to PATH)")
    flags.add("--max-depth", type=config.positive_int, metavar="N", env=False,
              help="with -R, descend at most N levels (implies -R)")
    flags.add("--glob", many=True, metavar="PATTERN", env=False,
              help="only names matching PATTERN (evaluated on the servers; repeatable)")
    flags.add("--exclude", many=True, metavar="PATTERN", env=False,
              help="leave out names matching PATTERN, and do not descend into them")
    flags.switch("--unsorted", help="print entries as they arrive, in no particular order")
    return flags


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``zdir`` command; returns its exit status."""
    try:
        args = client_flags().parse(argv)
    except ZdirError as exc:
        print(f"zdir: {exc}", file=sys.stderr)
        return exit_code(exc)
    _utf8_stdout()
    try:
        with Client(args.server, timeout=args.timeout, retries=args.retries,
                    server_key=args.server_key, curve_secret=args.curve_secret) as client:
            if args.ping:
                sources = client.ping()
                entries: List[Entry] = []
            else:
                listing = client.list(
                    args.path, all=args.all, stat=args.l or args.json, recursive=args.recursive,
                    max_depth=args.max_depth, glob=args.glob, exclude=args.exclude,
                )
                entries, sources = listing.entries, listing.sources
    except ZdirError as exc:
        print(f"zdir: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exit_code(exc)
    if not args.unsorted:
        entries.sort(key=_name_then_source(sources))
    try:
        _render(args, entries, sources)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head` closed the pipe: stop quietly
        _silence_stdout()
    from .output import source_problems

    for line in source_problems(sources):
        print(f"zdir: {line}", file=sys.stderr)
    return EXIT_PARTIAL if any(s.failed for s in sources) else EXIT_OK


def _render(args, entries: List[Entry], sources: Sequence[SourceStatus]) -> None:
    from . import output

    out = sys.stdout
    if args.json:
        output.write_json(entries, sources, out)
    elif args.ping:
        for s in sources:
            state = "ok" if s.ok else f"{s.code}: {s.error['message']}"  # type: ignore[index]
            version = f" version={s.version} uptime={s.uptime_s}s" if s.version else ""
            print(f"{s.name} {s.endpoint or '-'} {state}{version}", file=out)
    elif args.l:
        output.write_long(entries, out)
    else:
        output.write_plain(entries, out)


def _name_then_source(sources: Sequence[SourceStatus]):
    order = {s.name: i for i, s in enumerate(sources)}
    return lambda e: (e.name, order.get(e.source, len(order)))


def _utf8_stdout() -> None:
    """Names are escaped before printing, so UTF-8 never fails, whatever the locale."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(encoding="utf-8", errors="backslashreplace")


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    raise SystemExit(main())
