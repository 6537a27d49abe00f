"""The zdir wire protocol, version 1: build, encode, decode and validate messages.

Pure: no sockets, no filesystem. ``docs/protocol.md`` is the normative text; this
module is its executable form. A request is one msgpack map in one frame. A reply
is a header frame (a msgpack map) followed by ``chunks`` chunk frames, each a
msgpack array holding one source's entries column by column, so a relaying node
can pass its upstreams' chunks on without decoding them (those are ``zdir.chunks``).
"""

from __future__ import annotations

import enum
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import msgpack

from .errors import LocalProtocolError, RemoteProtocolError

VERSION = 1
OPERATIONS = ("list", "ping")
MAX_REQUEST_ID_BYTES = 64
MAX_PATH_BYTES = 4096
MAX_PATTERNS = 64
MAX_TRAIL = 64
MAX_ECHOED_OP = 32  # an op longer than this is not echoed in an error reply
# With these limits the largest valid request stays under the servers' default
# --max-request-bytes (64 KiB), so a valid request is never silently dropped.
MAX_ITEM_CHARS = 256  # one glob or exclude pattern, one trail entry
# Paging (docs/protocol.md, "Pages"): a token is opaque to clients and checked like a path.
MAX_TOKEN_BYTES = 32 * 1024  # one token, upstreams' tokens inside it included
MAX_KEY_BYTES = 16 * 1024  # a position: a listed name (recursive: a path under PATH)

Name = Union[str, bytes]

ENTRY_TYPES = {"f": "file", "d": "dir", "l": "symlink", "o": "other"}
TYPE_LETTERS = {name: letter for letter, name in ENTRY_TYPES.items()}


class ErrorCode(str, enum.Enum):
    """Stable error codes; the value is what travels and what users see."""

    BAD_REQUEST = "bad_request"  # not msgpack, wrong types, missing fields, extra frames
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_OP = "unknown_op"
    BAD_PATH = "bad_path"  # absolute, NUL byte, too long, '..' above the root
    OUTSIDE_ROOT = "outside_root"  # a symlink on the way resolves outside the root
    SYMLINK_LOOP = "symlink_loop"
    NOT_FOUND = "not_found"
    NOT_A_DIRECTORY = "not_a_directory"
    PERMISSION_DENIED = "permission_denied"
    LIMIT_EXCEEDED = "limit_exceeded"  # entries or depth over the server's limit
    BUSY = "busy"  # more concurrent requests than the server accepts
    TIMEOUT = "timeout"  # connected, but no reply within the deadline
    UNREACHABLE = "unreachable"  # never connected within the deadline
    AUTH_FAILED = "auth_failed"  # CURVE handshake failed
    BAD_REPLY = "bad_reply"  # an upstream answered with something that is not protocol
    LOOP = "loop"  # the request came back to a node it already passed
    INTERNAL = "internal"  # a bug on the server; the message says more

    def __str__(self) -> str:
        return self.value


#: Codes by which a healthy source turns the path down: an answer, not a failure.
REFUSAL_CODES = frozenset(
    code.value
    for code in (
        ErrorCode.NOT_FOUND,
        ErrorCode.NOT_A_DIRECTORY,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.OUTSIDE_ROOT,
        ErrorCode.SYMLINK_LOOP,
        ErrorCode.BAD_PATH,
    )
)


class Request(NamedTuple):
    """One request; field names are the wire keys."""

    op: str
    id: bytes
    path: Name = ""
    all: bool = False
    stat: bool = True
    recursive: bool = False
    max_depth: Optional[int] = None
    glob: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    deadline_ms: Optional[int] = None
    trail: Tuple[str, ...] = ()
    targets: bool = False  # symlink targets, in a 7th chunk item (only sent when true)
    # Paging: a request with any of these is paged (each is sent only when set).
    page_entries: Optional[int] = None  # at most this many entries per source per page
    page_ms: Optional[int] = None  # answer with what there is after this long
    token: Optional[bytes] = None  # the header ``token`` of the previous page
    horizon: Optional[Name] = None  # a source whose position is past this name waits

    @property
    def paged(self) -> bool:
        return (self.page_entries is not None or self.page_ms is not None
                or self.token is not None)


_PAGING_KEYS = ("page_entries", "page_ms", "token", "horizon")  # the last fields, in order
_TARGETS = Request._fields.index("targets")
_ALWAYS_SENT_REQUEST_KEYS = ("v", *Request._fields[:_TARGETS])
_REQUEST_KEYS = frozenset(Request._fields)


class SourceStatus(NamedTuple):
    """How one source (one node's own root) fared; field names are the wire keys."""

    name: str
    ok: bool
    endpoint: Optional[str] = None
    error: Optional[dict] = None  # {"code": str, "message": str}
    entries: int = 0
    truncated: bool = False
    elapsed_ms: float = 0.0
    version: Optional[str] = None
    uptime_s: Optional[float] = None
    node_id: Optional[str] = None  # ping only: the id a relay puts in a request's trail
    # The manifest: who asked this source, how many upstreams a relay asked, and how
    # many sources stood behind a failed upstream when it last answered.
    via: Optional[str] = None
    upstreams: Optional[int] = None
    behind: Optional[int] = None
    # Paged replies only: this source's position for its next page (None: finished),
    # and the last name it has sent in the whole listing so far.
    next: Optional[bytes] = None
    last: Optional[Name] = None

    @property
    def code(self) -> Optional[str]:
        return self.error["code"] if self.error else None

    @property
    def failed(self) -> bool:
        """True when the source could not give its full answer (partial result)."""
        if self.truncated:
            return True
        return not self.ok and self.code not in REFUSAL_CODES


class ReplyHeader(NamedTuple):
    """The first frame of every reply."""

    id: bytes
    op: str
    ok: bool
    error: Optional[dict] = None
    sources: Tuple[SourceStatus, ...] = ()
    chunks: int = 0
    token: Optional[bytes] = None  # paged: the whole listing's position; None: finished
    paged: bool = False  # a paged reply (``token`` and every source's ``next`` are sent)

    @property
    def code(self) -> Optional[str]:
        return self.error["code"] if self.error else None


MAX_SOURCE_NAME = 128


def valid_source_name(name: object) -> bool:
    """A source name is shown in columns and on terminals: printable, no white space."""
    # isprintable() is False for every white-space character but the ASCII space.
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_SOURCE_NAME
        and name.isprintable()
        and " " not in name
    )


def error_dict(code: str, message: str) -> dict:
    """The wire form of an error: a stable code and a human message."""
    return {"code": str(code), "message": message}


def pack(obj: Any) -> bytes:
    """msgpack with str and bytes kept apart (names may be either)."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(frame: bytes, what: str) -> Any:
    """Decode one frame; every msgpack failure becomes a RemoteProtocolError."""
    try:
        return msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises ValueError, ExtraData, FormatError, StackError...
        raise RemoteProtocolError(f"{what} is not valid msgpack: {exc}") from exc


# -- requests -------------------------------------------------------------------------------

def encode_request(request: Request, *, checked: bool = False) -> bytes:
    """One request frame; refuses to build what ``decode_request`` would reject.

    ``checked``: the caller made ``request`` from one that ``decode_request`` accepted,
    changing only what it controls (a relay's onward copy), so it is not checked again.
    """
    if not checked:
        try:
            check_request(request)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(exc.message, code=exc.code) from exc
    # Tuples travel as msgpack arrays. An unpaged request without targets is exactly
    # what it was before those keys: a node older than them never needs to see them.
    wire = dict(zip(_ALWAYS_SENT_REQUEST_KEYS, (VERSION, *request[:_TARGETS])))
    if request.targets:
        wire["targets"] = True
    for key, value in zip(_PAGING_KEYS, request[_TARGETS + 1:]):
        if value is not None:
            wire[key] = value
    return pack(wire)


def decode_request(frames: Sequence[bytes]) -> Request:
    """Parse and validate a request; the error keeps the id and op when they could be read."""
    if not frames:
        raise RemoteProtocolError("a request is exactly one frame, got 0")
    wire = unpack(frames[0], "request")
    if not isinstance(wire, dict):
        raise RemoteProtocolError(f"a request is a msgpack map, got {type(wire).__name__}")
    request_id = wire.get("id")
    if not isinstance(request_id, bytes) or not 0 < len(request_id) <= MAX_REQUEST_ID_BYTES:
        request_id = None
    op = wire.get("op")
    if not isinstance(op, str) or len(op) > MAX_ECHOED_OP:
        op = ""
    try:
        return _checked_request(frames, wire, request_id)
    except RemoteProtocolError as exc:
        exc.request_id, exc.op = request_id, op
        raise


def _checked_request(frames: Sequence[bytes], wire: dict, request_id: Optional[bytes]) -> Request:
    if len(frames) != 1:
        raise RemoteProtocolError(f"a request is exactly one frame, got {len(frames)}")
    version = wire.get("v")
    if type(version) is not int:
        raise RemoteProtocolError("'v' must be an integer")
    if version != VERSION:  # checked before anything else a later version may change
        raise RemoteProtocolError(
            f"protocol version {version} is not supported; this server speaks {VERSION}",
            code=ErrorCode.UNSUPPORTED_VERSION,
        )
    if request_id is None:
        raise RemoteProtocolError(f"'id' must be 1 to {MAX_REQUEST_ID_BYTES} bytes (bin)")
    del wire["v"]
    fields = wire if wire.keys() <= _REQUEST_KEYS else {
        k: v for k, v in wire.items() if k in _REQUEST_KEYS}  # a later version's keys
    for key in ("glob", "exclude", "trail"):
        if type(fields.get(key)) is list:
            fields[key] = tuple(fields[key])
    try:
        request = Request(**fields)
    except TypeError as exc:  # a required field is missing
        raise RemoteProtocolError(f"incomplete request: {exc}") from exc
    check_request(request)
    return request


_STR = frozenset((str,))
_NUMBER = frozenset((int, float))


def check_request(request: Request) -> None:
    """Raise RemoteProtocolError naming the first field with a wrong type or value."""
    op, request_id, path = request.op, request.id, request.path
    if not isinstance(op, str):
        raise RemoteProtocolError("'op' must be a string")
    if op not in OPERATIONS:
        raise RemoteProtocolError(
            f"unknown operation {op!r}; expected one of {', '.join(OPERATIONS)}",
            code=ErrorCode.UNKNOWN_OP,
        )
    if not isinstance(request_id, bytes) or not 0 < len(request_id) <= MAX_REQUEST_ID_BYTES:
        raise RemoteProtocolError(f"'id' must be 1 to {MAX_REQUEST_ID_BYTES} bytes (bin)")
    if not isinstance(path, (str, bytes)):
        raise RemoteProtocolError("'path' must be a string or bin")
    if len(path) > MAX_PATH_BYTES:
        raise RemoteProtocolError(
            f"'path' is longer than {MAX_PATH_BYTES} bytes", code=ErrorCode.BAD_PATH
        )
    if not (type(request.all) is bool and type(request.stat) is bool
            and type(request.recursive) is bool and type(request.targets) is bool):
        key = next(k for k in _BOOLEAN_FIELDS if type(getattr(request, k)) is not bool)
        raise RemoteProtocolError(f"'{key}' must be a boolean")
    for key in _COUNT_FIELDS:
        value = getattr(request, key)
        if value is not None and (type(value) is not int or value < 0):
            raise RemoteProtocolError(f"'{key}' must be a non-negative integer or nil")
    if (request.page_entries is not None or request.page_ms is not None
            or request.token is not None or request.horizon is not None):
        _check_paging(request)
    for key, limit in _ITEM_FIELDS:
        value = getattr(request, key)
        if type(value) is tuple and not value:  # the usual case: none
            continue
        if not isinstance(value, tuple) or not set(map(type, value)) <= _STR:
            raise RemoteProtocolError(f"'{key}' must be an array of strings")
        if len(value) > limit or max(map(len, value)) > MAX_ITEM_CHARS:
            raise RemoteProtocolError(
                f"'{key}' holds more than {limit} items or an item over {MAX_ITEM_CHARS} "
                "characters",
                code=ErrorCode.LIMIT_EXCEEDED,
            )


_BOOLEAN_FIELDS = ("all", "stat", "recursive", "targets")
_COUNT_FIELDS = ("max_depth", "deadline_ms")
_ITEM_FIELDS = (("glob", MAX_PATTERNS), ("exclude", MAX_PATTERNS), ("trail", MAX_TRAIL))


def _check_paging(request: Request) -> None:
    for key in ("page_entries", "page_ms"):
        value = getattr(request, key)
        if value is not None and (type(value) is not int or value < 1):
            raise RemoteProtocolError(f"'{key}' must be a positive integer or nil")
    if request.token is not None and (not isinstance(request.token, bytes)
                                      or not 0 < len(request.token) <= MAX_TOKEN_BYTES):
        raise RemoteProtocolError(f"'token' must be nil or 1 to {MAX_TOKEN_BYTES} bytes (bin)")
    if request.horizon is not None and (not isinstance(request.horizon, (str, bytes))
                                        or len(request.horizon) > MAX_KEY_BYTES):
        raise RemoteProtocolError(f"'horizon' must be nil or a name (str or bin) of at most "
                                  f"{MAX_KEY_BYTES} bytes")


# -- replies --------------------------------------------------------------------------------

def encode_header(header: ReplyHeader) -> bytes:
    """The reply's first frame."""
    paged = header.paged
    wire = {"v": VERSION, "id": header.id, "op": header.op, "ok": header.ok,
            "error": header.error,
            "sources": [_source_to_wire(source, paged) for source in header.sources],
            "chunks": header.chunks}
    if paged:
        wire["token"] = header.token
    return pack(wire)


# A source map's keys, in field order: always sent (``name`` to ``elapsed_ms``), sent
# when set (``version`` to ``behind``), and a paged reply's (``next`` always, ``last``).
_OPTIONAL_SOURCE_VALUES = slice(SourceStatus._fields.index("version"),
                                SourceStatus._fields.index("next"))
_SOURCE_KEYS_SENT = SourceStatus._fields[:_OPTIONAL_SOURCE_VALUES.start]
_OPTIONAL_SOURCE_KEYS = SourceStatus._fields[_OPTIONAL_SOURCE_VALUES]


def _source_to_wire(source: SourceStatus, paged: bool = False) -> dict:
    wire = dict(zip(_SOURCE_KEYS_SENT, source))
    for key, value in zip(_OPTIONAL_SOURCE_KEYS, source[_OPTIONAL_SOURCE_VALUES]):
        if value is not None:
            wire[key] = value
    if paged:
        wire["next"] = source.next
        if source.last is not None:
            wire["last"] = source.last
    return wire


def error_reply(request_id: Optional[bytes], op: str, code: str, message: str) -> List[bytes]:
    """A whole reply that refuses the request: header only, no chunks."""
    header = ReplyHeader(
        id=request_id or b"", op=op, ok=False, error=error_dict(code, message)
    )
    return [encode_header(header)]


def decode_header(frame: bytes) -> ReplyHeader:
    """Parse and validate a reply's first frame."""
    wire = unpack(frame, "reply header")
    if not isinstance(wire, dict):
        raise RemoteProtocolError("a reply header is a msgpack map")
    if wire.get("v") != VERSION:
        raise RemoteProtocolError(
            f"reply speaks protocol version {wire.get('v')!r}, not {VERSION}",
            code=ErrorCode.UNSUPPORTED_VERSION,
        )
    try:
        sources = tuple(map(_source_from_wire, wire.get("sources", ())))
        header = ReplyHeader(
            id=wire["id"],
            op=wire["op"],
            ok=wire["ok"],
            error=wire.get("error"),
            sources=sources,
            chunks=wire.get("chunks", 0),
            token=wire.get("token"),
            paged="token" in wire,
        )
    except (KeyError, TypeError) as exc:
        raise RemoteProtocolError(f"reply header is incomplete: {exc}") from exc
    if not isinstance(header.id, bytes) or not isinstance(header.op, str):
        raise RemoteProtocolError("reply header 'id' must be bin and 'op' a string")
    if type(header.ok) is not bool or type(header.chunks) is not int or header.chunks < 0:
        raise RemoteProtocolError("reply header 'ok' must be a boolean, 'chunks' a count")
    if header.token is not None and (not isinstance(header.token, bytes)
                                     or not 0 < len(header.token) <= MAX_TOKEN_BYTES):
        raise RemoteProtocolError(f"reply header 'token' must be nil or 1 to "
                                  f"{MAX_TOKEN_BYTES} bytes (bin)")
    _check_error(header.error)
    return header


_NONE = type(None)
_TEXT = frozenset((str, _NONE))
_COUNT = frozenset((int, _NONE))
# What each source map key may hold (exact types: msgpack makes no subclasses), and
# what a peer is told when it does not; ``name`` and ``error`` are checked apart.
_SOURCE_TYPES = {
    "ok": (frozenset((bool,)), "a source needs a printable 'name' and a boolean 'ok'"),
    "entries": (frozenset((int,)), "a source's 'entries' is a count and 'truncated' a boolean"),
    "truncated": (frozenset((bool,)),
                  "a source's 'entries' is a count and 'truncated' a boolean"),
    **dict.fromkeys(("endpoint", "version", "node_id", "via"), (
        _TEXT, "a source's 'endpoint' and 'version' are strings, times are numbers")),
    **dict.fromkeys(("upstreams", "behind"), (
        _COUNT, "a source's 'endpoint' and 'version' are strings, times are numbers")),
    "elapsed_ms": (_NUMBER, "a source's 'endpoint' and 'version' are strings, times are numbers"),
    "uptime_s": (_NUMBER | {_NONE},
                 "a source's 'endpoint' and 'version' are strings, times are numbers"),
    "next": (frozenset((bytes, _NONE)), "a source's 'next' is nil or bin, 'last' nil or a name"),
    "last": (frozenset((str, bytes, _NONE)),
             "a source's 'next' is nil or bin, 'last' nil or a name"),
}
_SOURCE_FIELDS = frozenset(SourceStatus._fields)


def _source_from_wire(wire: Any) -> SourceStatus:
    if not isinstance(wire, dict):
        raise TypeError("a source status is a map")
    if not wire.keys() <= _SOURCE_FIELDS:  # keys a later version may add are ignored
        wire = {k: v for k, v in wire.items() if k in _SOURCE_FIELDS}
    source = SourceStatus(**wire)  # TypeError when 'name' or 'ok' is missing
    if not valid_source_name(source.name):
        raise TypeError("a source needs a printable 'name' and a boolean 'ok'")
    for key, value in wire.items():  # the fields left out hold valid defaults
        allowed = _SOURCE_TYPES.get(key)
        if allowed is not None and type(value) not in allowed[0]:
            raise TypeError(allowed[1])
    _check_error(source.error)
    return source


def _check_error(error: Any) -> None:
    if error is None:
        return
    if not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
    ):
        raise RemoteProtocolError("an error is a map with string 'code' and 'message'")


def decode_reply(frames: Sequence[bytes], request_id: bytes) -> ReplyHeader:
    """Validate a whole reply against the request it answers; return its header."""
    if not frames:
        raise RemoteProtocolError("empty reply")
    header = decode_header(frames[0])
    if header.id != request_id:
        raise RemoteProtocolError(
            f"reply answers request {header.id.hex()}, not {request_id.hex()} (a stale reply)"
        )
    if header.chunks != len(frames) - 1:
        raise RemoteProtocolError(
            f"reply header announces {header.chunks} chunks but {len(frames) - 1} followed"
        )
    return header
