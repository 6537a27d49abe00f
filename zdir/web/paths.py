"""Directory paths in URLs: percent-encoded bytes in, protocol paths out; breadcrumbs for the page.

A path in a URL is taken as the exact bytes it encodes (names need not be
UTF-8) and handed to the node untouched: the node's own checks (``bad_path``,
``outside_root``, ...) decide what it means. Nothing here looks at a local file.
"""

from __future__ import annotations

from typing import List, NamedTuple
from urllib.parse import quote_from_bytes, unquote_to_bytes

from ..output import escape_name
from ..chunkframes import name_from_wire, name_to_wire

SAFE = b"-._~"  # with letters and digits: what the URL keeps as it is (RFC 3986 unreserved)


class Crumb(NamedTuple):
    """One step of the breadcrumbs: the name shown and the URL path below the view's prefix."""

    shown: str
    href: str


def from_url(raw_path: bytes, prefix: str) -> str:
    """The protocol path (str, undecodable bytes as surrogate escapes) after ``prefix``.

    One trailing slash is dropped (``/ls/docs/`` is ``docs``); anything else, a
    leading slash or ``..`` included, goes to the node as written, to be refused there.
    """
    rest = raw_path[len(prefix.encode()):]
    data = unquote_to_bytes(rest)
    if data.endswith(b"/"):
        data = data[:-1]
    return name_from_wire(data)


def to_url(path: str) -> str:
    """``path`` percent-encoded for a URL, with a trailing slash unless it is the root."""
    wire = name_to_wire(path)
    data = wire.encode("utf-8") if isinstance(wire, str) else wire
    return quote_from_bytes(data, safe=b"/" + SAFE) + "/" if data else ""


def crumbs(path: str) -> List[Crumb]:
    """Every directory from the root's child down to ``path``, each with its URL path."""
    parts = [part for part in path.split("/") if part]
    return [Crumb(escape_name(part), to_url("/".join(parts[: i + 1])))
            for i, part in enumerate(parts)]


def parent(path: str) -> str:
    """The directory above ``path`` ("" above a top-level one)."""
    return path.rstrip("/").rpartition("/")[0]
