"""Flags and environment variables of the three commands; every default is named here once."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, List, Mapping, NamedTuple, NoReturn, Optional, Sequence

from . import __version__
from .errors import UsageError

# -- defaults (shown in --help, documented in README.md) ---------------------------------------
SERVER_A_BIND = "tcp://127.0.0.1:5555"
SERVER_B_BIND = "tcp://127.0.0.1:5556"
SERVER_A_UPSTREAMS = (SERVER_B_BIND,)
DEFAULT_SERVER = SERVER_A_BIND

# Time is bounded by the user's deadline alone: dead, refused and frozen peers are
# known within about 2 s from what the connection shows (zdir/reliable.py), so the
# deadline only has to cover slow work. A cold listing of a few million entries takes
# tens of seconds on an ordinary machine.
CLIENT_TIMEOUT = 60.0  # seconds: the whole wait, as curl's --max-time
CLIENT_RETRIES = 0  # re-sends after the connection was lost before the reply
UPSTREAM_TIMEOUT = 60.0  # seconds a node waits when the request carries no deadline
UPSTREAM_RETRIES = 0  # likewise, for a node's requests to its upstreams
MAX_REPLY_BYTES = 256 << 20  # a reply coming in, on a node or the client: 2M entries fit
WORKERS = 4
MAX_PENDING = 64  # requests waiting for a worker before the server answers "busy"
MAX_REQUEST_BYTES = 64 * 1024  # ZMQ_MAXMSGSIZE on the listening socket
LOG_LEVEL = "INFO"
# Listings a node keeps between requests (see zdir/cache.py for what they may serve).
CACHE_MB = 64
STAT_TTL = 3.0  # seconds sizes, mtimes and modes may be served from the cache (as NFS acregmin)
# --compare: mtimes this close count as equal (many filesystems keep whole seconds only)
MODIFY_WINDOW = 1.0
# The client asks for listings in pages of at most this many entries per source (0: one
# reply holding everything, as before paging): memory stays bounded at every hop.
PAGE_ENTRIES = 10_000

ENV_PREFIX = "ZDIR_"


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without importing shutil.

    argparse makes one at every ``add_argument``, and the first imports shutil
    (with bz2, lzma and zlib) for the terminal's width: 2-3 ms of every start-up.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_width() - 2)  # argparse's own margin

    def _format_action_invocation(self, action: argparse.Action) -> str:
        """An optional value reads ``--color[=WHEN]``: zdir takes it only after '=', as GNU ls."""
        if action.option_strings and action.nargs == argparse.OPTIONAL:
            metavar = action.metavar or action.dest.upper()
            return ", ".join(f"{option}[={metavar}]" for option in action.option_strings)
        return super()._format_action_invocation(action)


def _terminal_width() -> int:
    """What ``shutil.get_terminal_size`` says: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", 0))
        if columns <= 0:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, ValueError, OSError):  # no stdout, a bad $COLUMNS, not a terminal
        columns = 0
    return columns or 80


def command_name(module_form: str, argv0: Optional[str] = None) -> str:
    """The name the user typed to run this command, for --help, --version and usage errors.

    An installed script is named as typed (``zdir``, ``zdir-server-a``, without
    its directory or Windows' ``.exe``); ``python -m zdir.client``, whose argv[0]
    is the module's file, is shown as ``module_form``.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    base = os.path.basename(argv0 or "")
    stem, extension = os.path.splitext(base)
    if not stem or extension.lower() in (".py", ".pyc", ".pyz") or base in ("-c", "-m"):
        return module_form
    return stem if extension.lower() == ".exe" else base


class _Parser(argparse.ArgumentParser):
    """argparse, except that a bad flag raises instead of printing its whole usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise _BadFlag(message)

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        """argparse's conversion, but a type's own ValueError message is kept as the reason.

        argparse says ``invalid http_bind value: 'x'`` and drops the text that says
        what was expected; the one-line usage no longer lists it either.
        """
        try:
            return super()._get_value(action, arg_string)
        except argparse.ArgumentError as exc:
            cause = exc.__context__
            if type(cause) is not ValueError or not str(cause):
                raise
            reason = str(cause)
            if reason.startswith(("invalid literal for int()", "could not convert string to")):
                reason = f"{arg_string!r} is not a number"
            raise argparse.ArgumentError(action, reason) from None


class _BadFlag(Exception):
    """argparse's reason for refusing a command line, on its way to becoming a UsageError."""


class Flags:
    """An argparse parser whose flags also read ZDIR_* variables (the flag wins).

    ``prog`` is the ``python -m`` form of the command; when the command line is
    the process's own (``parse(None)``), the name the user typed replaces it.
    Descriptions and epilogs say ``%(prog)s`` for it (and ``%%`` for ``%``).
    """

    def __init__(self, prog: str, description: str, epilog: str = "",
                 environ: Optional[Mapping[str, str]] = None) -> None:
        self.environ = os.environ if environ is None else environ
        self._many_defaults: dict = {}  # repeatable flags: argparse would append to a default
        self.parser = _Parser(
            prog=prog,
            description=description,
            epilog=epilog,
            add_help=False,
            formatter_class=_HelpFormatter,
        )
        self.parser.add_argument("--help", action="help", help="show this help and exit")
        self.parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    def add(self, *names: str, default: Any = None, type: Callable[[str], Any] = str,
            help: str = "", env: bool = True, many: bool = False, **kwargs: Any) -> None:
        """Add a flag; with ``env`` its default comes from ZDIR_<FLAG> when that is set."""
        flag = next(n for n in names if n.startswith("--"))
        var = env_name(flag)
        shown = (", ".join(default or ()) or None) if many else default
        notes = []
        if shown not in (None, "", False):
            notes.append(f"default: {shown}")
        if env:
            notes.append(f"env {var}")
        text = f"{help} ({'; '.join(notes)})" if notes else help
        if env and var in self.environ:
            raw = self.environ[var]
            try:
                default = [type(v) for v in split_list(raw)] if many else type(raw)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise UsageError(f"{var}={raw!r}: {exc}") from None
            choices = kwargs.get("choices")
            if choices is not None and default not in choices:  # argparse checks flags only
                raise UsageError(f"{var}={raw!r}: choose from {', '.join(choices)}")
        if many:
            kwargs.setdefault("action", "append")
            self.parser.add_argument(*names, default=None, type=type, help=text, **kwargs)
            self._many_defaults[kwargs.get("dest") or flag.lstrip("-").replace("-", "_")] = (
                list(default or [])
            )
        else:
            self.parser.add_argument(*names, default=default, type=type, help=text, **kwargs)

    def short_usage(self) -> str:
        """``%(prog)s [flags] ARGS``: the arguments alone, as GNU's ``ls [OPTION]... [FILE]...``."""
        words = ["%(prog)s", "[flags]"]
        for action in self.parser._actions:
            if not action.option_strings:  # a positional argument
                metavar = action.metavar or action.dest.upper()
                words.append(f"[{metavar}]" if action.nargs == "?" else str(metavar))
        return " ".join(words)

    def switch(self, *names: str, help: str) -> None:
        """A boolean flag (no environment variable: they change one run, not a deployment)."""
        self.parser.add_argument(*names, action="store_true", help=help)

    def parse(self, argv: Optional[Sequence[str]],
              rewrite: Optional[Callable[[Sequence[str]], List[str]]] = None
              ) -> argparse.Namespace:
        """Parse; a bad flag is a UsageError (exit 2) whose message is argparse's reason.

        The one-line usage goes to stderr first (as argparse prints its own), so
        that the reason, which the command prints as it prints every error, comes
        last: ``usage: zdir [flags] [PATH]   (zdir --help lists every flag)``, then
        ``zdir: argument --timeout: ...``. ``rewrite`` may adjust the words first.
        """
        if argv is None:
            self.parser.prog = command_name(self.parser.prog)
        self.parser.usage = self.short_usage()
        if rewrite is not None:
            argv = rewrite(sys.argv[1:] if argv is None else argv)
        try:
            args = self.parser.parse_args(argv)
        except _BadFlag as exc:
            usage = self.parser.usage % {"prog": self.parser.prog}
            sys.stderr.write(f"usage: {usage}   ({self.parser.prog} --help lists every flag)\n")
            raise UsageError(str(exc)) from None
        for dest, default in self._many_defaults.items():
            if getattr(args, dest) is None:
                setattr(args, dest, default)
        return args


def split_list(raw: str) -> List[str]:
    """Several values in one variable, separated by commas or white space."""
    return [part for part in raw.replace(",", " ").split() if part]


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


TRANSPORTS = ("tcp", "ipc", "inproc", "ws", "wss")


def source_name(text: str) -> str:
    """A node's --name: it is shown in columns and on terminals."""
    from .protocol import MAX_SOURCE_NAME, valid_source_name

    if not valid_source_name(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a name is 1 to {MAX_SOURCE_NAME} printable characters, no spaces"
        )
    return text


def endpoint(text: str) -> str:
    """An endpoint to connect to: tcp://host:port (or ipc://path, ...)."""
    return _endpoint(text, wildcard=False)


def bind_endpoint(text: str) -> str:
    """An endpoint to bind: as ``endpoint``, and a port of '*' picks a free one."""
    return _endpoint(text, wildcard=True)


def _endpoint(text: str, wildcard: bool) -> str:
    """Catch a typo here, as a usage error, rather than as a ZMQError at connect time."""
    transport, sep, address = text.partition("://")
    if not sep or transport not in TRANSPORTS or not address:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an endpoint like tcp://host:port ({', '.join(TRANSPORTS)})"
        )
    if transport == "tcp":
        host, colon, port = address.rpartition(":")
        ok_port = port.isdigit() and 0 < int(port) < 65536 or (wildcard and port == "*")
        if not colon or not host or not ok_port:
            wanted = "a port number or *" if wildcard else "a port number"
            raise argparse.ArgumentTypeError(f"{text!r}: tcp endpoints need a host and {wanted}")
    return text


# -- --upstreams-file (format: docs/fleet.md) -----------------------------------------------------

class Upstream(NamedTuple):
    """One line of an upstreams file: where the node is, and the name to show until it answers."""

    endpoint: str
    name: Optional[str] = None


def parse_upstreams(text: str, filename: str = "<upstreams>") -> List[Upstream]:
    """The upstreams in an upstreams file's text, in file order.

    One endpoint per line, optionally followed by a name; ``#`` at the start of
    a line or after white space starts a comment; blank lines are skipped. Pure,
    so that a reload (SIGHUP) can check a new file completely before using any
    of it. Raises UsageError naming ``filename:line`` for the first bad line, a
    repeated endpoint or a repeated name.
    """
    from .protocol import MAX_SOURCE_NAME, valid_source_name

    upstreams: List[Upstream] = []
    endpoints: "dict[str, int]" = {}
    names: "dict[str, int]" = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = _strip_comment(line).split()
        if not words:
            continue
        where = f"{filename}:{number}"
        if len(words) > 2:
            raise UsageError(f"{where}: expected 'ENDPOINT [NAME]', got {len(words)} words")
        try:
            address = endpoint(words[0])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{where}: {exc}") from None
        name = words[1] if len(words) == 2 else None
        if name is not None and not valid_source_name(name):
            raise UsageError(f"{where}: {name!r}: a name is 1 to {MAX_SOURCE_NAME} printable "
                             "characters, no spaces")
        for key, seen, what in ((address, endpoints, "endpoint"), (name, names, "name")):
            if key is None:
                continue
            if key in seen:
                raise UsageError(f"{where}: {what} {key} is already on line {seen[key]}")
            seen[key] = number
        upstreams.append(Upstream(address, name))
    return upstreams


def read_upstreams(path: str) -> List[Upstream]:
    """``parse_upstreams`` on a file (UTF-8); an unreadable file is a UsageError naming it."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the upstreams file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text") from None
    return parse_upstreams(text, path)


def _strip_comment(line: str) -> str:
    """The line without its comment: ``#`` first on the line or after white space.

    A ``#`` inside a word (an ipc:// path, say) is part of the word.
    """
    for index, char in enumerate(line):
        if char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line
