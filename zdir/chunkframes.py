"""Chunk frames (a reply's entries, one source's columns to a frame) and names on the wire.

Pure, like ``protocol``, and apart from it: the envelope there (requests, reply
headers, error codes) is what every message carries and every node checks, while
chunks are the bulk a relay passes on undecoded (``chunk_source``, ``renamed_chunk``)
and only the walk encodes and the client decodes. ``docs/protocol.md``, "Chunk
frames", is the contract.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple

import msgpack

from .errors import RemoteProtocolError
from .protocol import _NUMBER, ENTRY_TYPES, Name, pack, unpack, valid_source_name


class Chunk(NamedTuple):
    """Entries of one source, column by column; stat columns are None when not asked."""

    names: List[Name]
    types: str  # one letter per entry, see ENTRY_TYPES
    sizes: Optional[List[Optional[int]]] = None
    mtimes: Optional[List[Optional[float]]] = None
    modes: Optional[List[Optional[int]]] = None
    # Only when the request asked for targets: a symlink's target, when its text stays
    # inside the root (nil for other entries, and for targets that would leave it).
    targets: Optional[List[Optional[Name]]] = None


_NAME_TYPES = frozenset((str, bytes))
_TARGET_TYPES = _NAME_TYPES | {type(None)}
# What each stat column may hold; checked with one C-level pass per column.
_COLUMN_TYPES = (
    frozenset((int, type(None))),
    _NUMBER | {type(None)},
    frozenset((int, type(None))),
)


def encode_chunk(source: str, chunk: Chunk) -> bytes:
    """One chunk frame: ``[source, names, types, sizes, mtimes, modes]``, then ``targets``
    as a 7th item only when the chunk has them (only requests with ``targets`` get them)."""
    items = [source, chunk.names, chunk.types, chunk.sizes, chunk.mtimes, chunk.modes]
    if chunk.targets is not None:
        items.append(chunk.targets)
    return pack(items)


def chunk_source(frame: bytes) -> Tuple[str, int]:
    """A chunk frame's source name, and where the items after it begin, without the rest.

    For a relay, which passes chunks on untouched unless it must rename their source.
    """
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(frame)
    try:
        if unpacker.read_array_header() not in (6, 7):
            raise ValueError("not 6 or 7 items")
        source = unpacker.unpack()
    except Exception as exc:  # whatever msgpack raises: the peer's bytes are bad
        raise RemoteProtocolError(f"a chunk does not start with a source name: {exc}") from exc
    if not valid_source_name(source):
        raise RemoteProtocolError("a chunk does not start with a source name")
    return source, unpacker.tell()


def renamed_chunk(frame: bytes, source: str) -> bytes:
    """The same chunk frame under another source name (its entries are not decoded)."""
    _, rest = chunk_source(frame)
    return frame[:1] + pack(source) + frame[rest:]  # the array header is one byte: 6 or 7


def decode_chunk(frame: bytes) -> Tuple[str, Chunk]:
    """Parse and validate one chunk frame (columns must all have one value per name)."""
    wire = unpack(frame, "chunk")
    if not isinstance(wire, list) or len(wire) not in (6, 7):
        raise RemoteProtocolError("a chunk is an array of 6 items (7 with targets)")
    source, names, types, sizes, mtimes, modes = wire[:6]
    targets = wire[6] if len(wire) == 7 else None
    if not valid_source_name(source) or not isinstance(names, list) or not isinstance(types, str):
        raise RemoteProtocolError("a chunk needs a source name, a names array, a types string")
    count = len(names)
    if len(types) != count or not set(types) <= ENTRY_TYPES.keys():
        raise RemoteProtocolError("chunk 'types' must hold one of f, d, l, o per name")
    for column, allowed in zip((sizes, mtimes, modes), _COLUMN_TYPES):
        if column is None:
            continue
        if not isinstance(column, list) or len(column) != count:
            raise RemoteProtocolError("every stat column must be nil or one value per name")
        if not set(map(type, column)) <= allowed:
            raise RemoteProtocolError("sizes and modes must be integers, mtimes numbers")
    if not set(map(type, names)) <= _NAME_TYPES:  # one C-level pass: chunks are large
        raise RemoteProtocolError("chunk names must be strings or bin")
    if targets is not None and (not isinstance(targets, list) or len(targets) != count
                                or not set(map(type, targets)) <= _TARGET_TYPES):
        raise RemoteProtocolError("chunk 'targets' must be nil or one string, bin or nil "
                                  "per name")
    return source, Chunk(names, types, sizes, mtimes, modes, targets)


def name_to_wire(name: str) -> Name:
    """A file name as it travels: str when it is valid UTF-8, else its raw bytes.

    ``os.scandir`` gives undecodable bytes as lone surrogates, which msgpack refuses
    to encode; 'surrogateescape' gives the original bytes back (POSIX), and
    'surrogatepass' keeps Windows' unpaired UTF-16 surrogates as WTF-8.
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        try:
            return name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return name.encode("utf-8", "surrogatepass")


def name_from_wire(name: Name) -> str:
    """A wire name as str; bytes become surrogate escapes, so ``os.fsencode`` restores them."""
    if isinstance(name, bytes):
        return name.decode("utf-8", "surrogateescape")
    return name
