"""The ``zdir`` command: flags, the listing or ping it asks for, and how it is printed.

A thin layer over the ``Client`` API (zdir/client.py) and the writers (zdir/output.py and the
formats beside it: longformat, jsonformat, compareformat; problems for stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import compareformat, config, jsonformat, longformat, output, problems
from .client import Client, Reply
from .entries import Entry
from .errors import EXIT_OK, EXIT_PARTIAL, UsageError, ZdirError, exit_code
from .pages import Pages
from .progress import Progress
from .protocol import SourceStatus

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
    flags.add("--time-style", default="locale", choices=longformat.TIME_STYLES, metavar="STYLE",
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
    for line in problems.source_problems(sources):
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
    shape = {"shape": compareformat.compare_dict} if args.compare else {}
    if args.json:
        jsonformat.write_json(records, sources, out, key="names" if args.compare else "entries",
                              **shape)
    elif args.ndjson:
        jsonformat.write_ndjson(records, sources, out, **shape)
    elif args.compare:
        compareformat.write_compare(records, out, style)  # type: ignore[arg-type]
    elif args.l:
        longformat.write_long(records, out, style)
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

