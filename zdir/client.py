"""The Python API (``Client``) and the ``zdir`` command, a thin layer over it."""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import time
from functools import partial
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional
from typing import Sequence, Tuple, Union

import zmq

from . import config, output, protocol
from .errors import EXIT_OK, EXIT_PARTIAL, Refused, ZdirError
from .errors import Unreachable, UsageError, exit_code
from .protocol import ErrorCode, SourceStatus, name_from_wire
from .entries import Entries, Entry
from .pages import Pages
from .progress import Progress
from .exchange import Exchange
from .reliable import Call, Link


BUSY_BACKOFF = 0.05  # seconds before asking a busy server again; doubles, with jitter ...
BUSY_BACKOFF_MAX = 2.0  # ... up to this, for as long as the deadline allows
BUSY_LAST_TRY = 0.05  # seconds kept for the last try before the deadline


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

    def chunks(self) -> Iterator[Tuple[str, protocol.Chunk]]:
        """(source, chunk) pairs; each frame is released once decoded."""
        frames, self._frames = self._frames, []
        frames.reverse()
        while frames:
            yield protocol.decode_chunk(frames.pop().bytes)

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
        long as the deadline allows.
        """
        if isinstance(path, str):
            path = protocol.name_to_wire(path)
        deadline = time.monotonic() + self.timeout
        for attempt in itertools.count():
            call = self._call(op, path, options, deadline)
            header = call.header
            assert header is not None
            if header.code != ErrorCode.BUSY:
                break
            pause = min(BUSY_BACKOFF * 2 ** attempt, BUSY_BACKOFF_MAX) * random.uniform(0.5, 1.5)
            left = deadline - time.monotonic() - BUSY_LAST_TRY
            if left <= 0:
                raise Unreachable(f"{self.endpoint}: still busy at the deadline after "
                                  f"{attempt + 1} attempts: {header.error['message']}",  # type: ignore[index]
                                  endpoint=self.endpoint, code=ErrorCode.BUSY)
            time.sleep(min(pause, left))  # the last pause is cut short: one more try fits
        return self._reply(call)

    def begin(self, op: str, path: Union[str, bytes] = "", **options: object) -> Call:
        """Send one request and return at once; ``complete`` waits for its reply.

        For pipelining: a paged listing asks for its next page before it reads this one.
        """
        if isinstance(path, str):
            path = protocol.name_to_wire(path)
        now = time.monotonic()
        call = self._start(op, path, options, now + self.timeout)
        call.owner = (op, path, options)
        return call

    def complete(self, call: Call) -> Reply:
        """The reply to a call from ``begin`` (asked again, as ``send`` does, if busy)."""
        if not call.done:
            self._exchange.wait_for(call)
        if call.error is not None:
            raise call.error
        if call.header is not None and call.header.code == ErrorCode.BUSY:
            op, path, options = call.owner
            return self.send(op, path, **options)
        return self._reply(call)

    def _reply(self, call: Call) -> Reply:
        header = call.header
        assert header is not None
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
            path = protocol.name_to_wire(path)
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


# -- the command ------------------------------------------------------------------------------

SORT_KEYS = ("name", "size", "time", "source", "none")
COLOR_WHEN = ("auto", "always", "never")


def client_flags() -> config.Flags:
    flags = config.Flags(
        "python -m zdir.client",
        "List a directory across zdir servers: the server's own root merged with its upstreams'.",
        epilog=(
            "examples:\n"
            "  %(prog)s                          # the merged root, one name per line\n"
            "  %(prog)s -lh docs                 # long format, sizes like 1.5K, with each source\n"
            "  %(prog)s -R --glob 'report*.pdf'  # find a file on every host\n"
            "  %(prog)s --compare -R docs        # where each name is; which copies differ\n"
            "  %(prog)s --json | jq '.entries[].name'\n"
            "  %(prog)s -R --ndjson | jq -r 'select(.size > 1e9) | .name'\n"
            "  %(prog)s --server tcp://hosta:5555 --ping\n"
            "\nexit status: 0 complete, 1 refused (bad path, not found anywhere),"
            " 2 usage,\n3 partial (a source failed; stderr names it), 4 server unreachable."
            "\nThe shapes of --json, --ndjson and --compare are in docs/output.md."
        ),
    )
    flags.parser.add_argument("path", nargs="?", default="", metavar="PATH",
                              help="directory relative to every server's root (default: the root)")
    flags.add("--server", default=config.DEFAULT_SERVER, type=config.endpoint,
              metavar="ENDPOINT", help="server to ask (A, or any node)")
    flags.add("--timeout", default=config.CLIENT_TIMEOUT, type=config.positive_float,
              metavar="SECONDS", help="the whole wait, as curl's --max-time: every hop "
                                      "works within it; dead servers are reported at once")
    flags.add("--retries", default=config.CLIENT_RETRIES, type=config.count, metavar="N",
              help="re-send after the connection was lost before the reply, if the server "
                   "is back within a second (a live server is never asked twice)")
    flags.add("--server-key", metavar="FILE", help="server's public key file: turns CURVE on")
    flags.add("--curve-secret", metavar="FILE", help="this client's secret key file (CURVE)")
    flags.switch("-a", "--all", help="include names starting with '.'")
    flags.switch("-R", "--recursive", help="list sub-directories too (names relative to PATH)")
    flags.add("--max-depth", type=config.positive_int, metavar="N", env=False,
              help="with -R, descend at most N levels (implies -R)")
    flags.add("--glob", many=True, metavar="PATTERN", env=False,
              help="only names matching PATTERN (evaluated on the servers; repeatable)")
    flags.add("--exclude", many=True, metavar="PATTERN", env=False,
              help="leave out names matching PATTERN, and do not descend into them")
    flags.add("--source", many=True, metavar="NAME", env=False,
              help="only this source's entries: a name, a glob ('web*') or a range "
                   "('node[0001-0100]'); repeatable; with --compare, compare only these")
    # Output for people, as GNU ls.
    flags.switch("-l", help="long format: mode, size, mtime, source, name")
    flags.switch("-h", "--human", "--human-readable",
                 help="with -l, sizes like 1.5K 23M 4.0G (as ls -lh: powers of 1024, rounded up)")
    flags.add("--time-style", default="locale", choices=output.TIME_STYLES, metavar="STYLE",
              help="with -l: locale (Mar 30 23:45), iso (03-30 23:45), long-iso "
                   "(2024-03-30 23:45) or full-iso (2024-03-30 23:45:07.123456000 +0000)")
    flags.switch("-1", help="one bare name per line, each name once, without the sources "
                            "that have it (for scripts)")
    flags.switch("-F", "--classify",
                 help="append / to directories, @ to symlinks, | to fifos, = to sockets, "
                      "* to executables")
    flags.add("--color", "--colour", default="auto", choices=COLOR_WHEN, nargs="?",
              const="always", metavar="WHEN",
              help="colour names by type as ls does (LS_COLORS keys di ln ex pi so bd cd). "
                   "As in GNU ls, WHEN comes only after '=' (--color=never); --color alone "
                   "is always; auto: only when stdout is a terminal and NO_COLOR is unset")
    flags.add("--sort", choices=SORT_KEYS, env=False, metavar="WORD",
              help="name (code points; the default), size (largest first), time (newest "
                   "first), source, or none (as they arrive; the default for --ndjson)")
    flags.parser.add_argument("-S", dest="sort", action="store_const", const="size",
                              help="--sort size")
    flags.parser.add_argument("-t", dest="sort", action="store_const", const="time",
                              help="--sort time")
    flags.parser.add_argument("-U", "--unsorted", dest="sort", action="store_const",
                              const="none", help="--sort none: print entries as they arrive")
    flags.switch("-r", "--reverse", help="reverse the order")
    flags.switch("--compare",
                 help="one line per name: on which sources it is, and whether the copies "
                      "agree on type, size and mtime")
    flags.add("--modify-window", default=config.MODIFY_WINDOW, type=config.non_negative_float,
              metavar="SECONDS", help="with --compare, mtimes this close count as equal")
    # Output for programs.
    flags.switch("--json", help='one JSON document {"entries": [...], "sources": [...]}')
    flags.switch("--ndjson", help='one JSON object per entry and line, streamed as decoded, '
                                  'then {"sources": [...]} as the last line')
    flags.add("--page-entries", default=config.PAGE_ENTRIES, type=config.count, metavar="N",
              help="ask for the listing in pages of at most N entries per source, merged "
                   "and printed as they arrive, the next page already asked for; memory "
                   "stays bounded on every hop. 0: one reply with everything")
    flags.switch("--ping", help="ask every node for its name, version, uptime and upstreams")
    flags.switch("-v", "--verbose",
                 help="with --ping, one line per source even for a fleet (whose nodes "
                      "are otherwise shown one line per state, names folded into ranges)")
    return flags


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """The flags, with the combinations that cannot mean anything turned down."""
    args = client_flags().parse(argv, rewrite=_color_value_after_equals_only)
    if args.json and args.ndjson:
        raise UsageError("--json or --ndjson: choose one")
    if args.compare and args.sort not in (None, "name"):
        raise UsageError(f"--compare shows names in order; --sort {args.sort} is for listings")
    return args


def _color_value_after_equals_only(argv: Sequence[str]) -> List[str]:
    """``--color`` alone means always, and a value comes only after '=', as in GNU ls.

    argparse would take the next word as the value, so ``--color docs`` would
    swallow the PATH. Abbreviations (``--col``) and ``--colour`` are treated alike;
    nothing after ``--`` is touched.
    """
    out: List[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[index:])
        if len(arg) >= len("--col") and ("--color".startswith(arg) or "--colour".startswith(arg)):
            arg = "--color=always"
        out.append(arg)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``zdir`` command; returns its exit status."""
    try:
        args = parse_args(argv)
    except ZdirError as exc:
        print(f"zdir: {exc}", file=sys.stderr)
        return exit_code(exc)
    _utf8_stdout()
    try:
        # The progress line is blanked (its `with` ends) before any error is printed.
        with _progress(args) as progress, Client(
            args.server, timeout=args.timeout, retries=args.retries,
            server_key=args.server_key, curve_secret=args.curve_secret,
        ) as client:
            sources, write = _ping(client, args) if args.ping else _list(client, args, progress)
            progress.stop()
            try:
                write(sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:  # `| head` closed the pipe: stop quietly
                _silence_stdout()
    except ZdirError as exc:
        # Messages may quote a server's words: escape them like names.
        print(f"zdir: {type(exc).__name__}: {output.escape_name(str(exc))}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        return exit_code(exc)
    for line in output.source_problems(sources):
        print(f"zdir: {output.escape_name(line)}", file=sys.stderr)
    return EXIT_PARTIAL if any(s.failed for s in sources) else EXIT_OK


Writer = Callable[[IO[str]], None]


def _list(client: Client, args: argparse.Namespace,
          progress: Progress) -> Tuple[Tuple[SourceStatus, ...], Writer]:
    """Ask for the listing; return every source's status and what writes the output.

    Entries are decoded as the writer consumes them, so unsorted output and
    --ndjson stream, whatever the size of the listing.
    """
    colors = _colors(args.color)
    reply = client.stream(
        args.path, all=args.all, stat=_needs_stat(args, colors), recursive=args.recursive,
        max_depth=args.max_depth, glob=args.glob, exclude=args.exclude, targets=args.l,
        page_entries=args.page_entries or None,
        # JSON as it arrives needs no merge; names and -l merge in order even with -U,
        # so that a name's copies come together and the output streams.
        ordered=not ((args.json or args.ndjson) and _sort(args) == "none"),
    )
    sources = progress.sources = reply.sources  # a paged listing updates it as pages come
    chosen = _chosen_sources(args.source, tuple(sources))
    entries: Iterable[Entry] = reply
    if args.source:
        wanted = {s.name for s in chosen}  # --source may be a glob or a range
        if isinstance(reply, Pages):
            reply.only = wanted
        else:
            entries = (e for e in entries if e.source in wanted)
    records: Iterable[Any]
    if args.compare:
        from .compare import compare

        records = compare(entries, chosen, args.modify_window)[:: -1 if args.reverse else 1]
    else:
        records = _ordered(entries, args, sources)
    style = output.Style(args.human, args.time_style, args.classify, colors)
    return sources, partial(_render, args, records, sources, style)


def _render(args: argparse.Namespace, records: Iterable[Any],
            sources: Sequence[SourceStatus], style: output.Style, out: IO[str]) -> None:
    """Entries, or comparisons with --compare, in the format the flags ask for."""
    shape = {"shape": output.compare_dict} if args.compare else {}
    if args.json:
        output.write_json(records, sources, out, key="names" if args.compare else "entries",
                          **shape)
    elif args.ndjson:
        output.write_ndjson(records, sources, out, **shape)
    elif args.compare:
        output.write_compare(records, out, style)  # type: ignore[arg-type]
    elif args.l:
        output.write_long(records, out, style)
    else:
        output.write_plain(records, out, style, sources, where=not getattr(args, "1"))


def _ping(client: Client, args: argparse.Namespace) -> Tuple[Tuple[SourceStatus, ...], Writer]:
    """One line per source (a handful of them, or -v); beyond, one line per state, folded.

    A fleet's line reads ``ok version=0.4.0  998  node[0001-0041,0043-0776,...]``:
    the state (an error code, or ok and the version), how many, which.
    """
    from .nodeset import HANDFUL, fold

    sources = client.ping()
    if args.json or args.ndjson:
        return sources, partial(_render, args, [], sources, output.PLAIN)
    lines = []
    if args.verbose or len(sources) <= HANDFUL:
        for s in sources:
            state = "ok" if s.ok else f"{s.code}: {s.error['message']}"  # type: ignore[index]
            version = f" version={s.version} uptime={s.uptime_s}s" if s.version else ""
            lines.append(f"{s.name} {s.endpoint or '-'} {state}{version}")
    else:
        states: Dict[str, List[str]] = {}  # in order of first appearance: the answering node's
        for s in sources:
            state = (f"ok version={s.version}" if s.version else "ok") if s.ok else str(s.code)
            states.setdefault(state, []).append(s.name)
        width = max(map(len, states))
        count_width = len(str(max(map(len, states.values()))))
        lines = [f"{state:<{width}}  {len(names):>{count_width}}  {fold(names)}"
                 for state, names in states.items()]

    def write(out: IO[str]) -> None:
        for line in lines:
            print(output.escape_name(line), file=out)

    return sources, write


def _chosen_sources(names: Sequence[str],
                    sources: Tuple[SourceStatus, ...]) -> Tuple[SourceStatus, ...]:
    """The sources --source chooses (all when it names none): names, globs, ranges.

    ``web*``, ``node[0001-0100]`` and ``node[1-3],db*`` are understood as
    zdir.nodeset says. A value that chooses no source is a usage error, unless
    a source failed: an upstream that never answered may be the one, and it
    could not tell its name.
    """
    from .nodeset import HANDFUL, PatternError, fold, select

    if not names:
        return sources
    try:
        picked, unused = select(names, [s.name for s in sources])
    except PatternError as exc:
        raise UsageError(f"--source: {exc}") from None
    if unused and not any(s.failed for s in sources):
        every = [s.name for s in sources]
        shown = ", ".join(every) if len(every) <= HANDFUL else fold(every)
        raise UsageError(f"--source {unused[0]}: no such source here; the sources are {shown}")
    chosen = set(picked)
    return tuple(s for s in sources if s.name in chosen)


def _ordered(entries: Iterable[Entry], args: argparse.Namespace,
             sources: Sequence[SourceStatus]) -> Iterable[Entry]:
    """--sort and -r; ties go by name, then by the sources' order. none keeps arrival order."""
    sort = _sort(args)
    if sort == "none":
        return entries
    if sort == "name" and isinstance(entries, Pages) and entries.ordered:  # merged as they come
        return entries.entries()[::-1] if args.reverse else entries
    if sort == "name" and isinstance(entries, Reply):
        # Columns, not Entry tuples: a fraction of the time and memory on large listings.
        # Entries arrive in the sources' order, so a stable sort breaks ties as below.
        merged = entries.entries()
        merged.sort(reverse=args.reverse)
        return merged
    rank = {s.name: i for i, s in enumerate(sources)}
    last = len(rank)
    keys: Dict[str, Callable[[Entry], tuple]] = {
        "name": lambda e: (e.name, rank.get(e.source, last)),
        "size": lambda e: (e.size is None, -(e.size or 0), e.name, rank.get(e.source, last)),
        "time": lambda e: (e.mtime is None, -(e.mtime or 0), e.name, rank.get(e.source, last)),
        "source": lambda e: (rank.get(e.source, last), e.name),
    }
    return sorted(entries, key=keys[sort], reverse=args.reverse)


def _sort(args: argparse.Namespace) -> str:
    """--sort as given; by default name, and none (as they arrive) for --ndjson."""
    return args.sort or ("none" if args.ndjson else "name")


def _needs_stat(args: argparse.Namespace, colors: Optional[dict]) -> bool:
    """Sizes, mtimes and modes cost the servers a stat per entry: ask only when they are used."""
    return bool(args.l or args.json or args.ndjson or args.compare or args.classify or colors
                or args.sort in ("size", "time"))


def _colors(when: str) -> Optional[dict]:
    """--color: auto means stdout is a terminal and NO_COLOR is unset or empty (no-color.org)."""
    if when == "never" or (
        when == "auto" and (os.environ.get("NO_COLOR") or not sys.stdout.isatty())
    ):
        return None
    return output.ls_colors(os.environ.get("LS_COLORS"))


def _progress(args: argparse.Namespace) -> Progress:
    """A progress line is for people: only when stderr is a terminal and stdout is not JSON."""
    wanted = not (args.json or args.ndjson) and sys.stderr.isatty()
    return Progress(sys.stderr if wanted else None, args.server)


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
