"""Leased cursors: a paged listing's suspended walk, kept between pages so nothing is re-read.

A ``Cursor`` holds one paged listing of this node's own root: the lister's generator,
suspended where the last page ended, and the position of the last entry sent
(``sent``). The next page continues the same generator in a worker thread (see
``walks.Workers``); after a page is answered, the node already lists the next one
(``ahead``: at most one page ahead). A cursor is kept for ``LEASE`` seconds after it
was last used, and at most ``MAX_CURSORS`` of them (the least recently used goes
first): each holds a directory descriptor per level and one directory's sorted names.

A token names its cursor by id. A token whose cursor is gone (expired, evicted, another
node, a restart) or does not match (other options, another position) is served by a
fresh walk that starts after the token's position: the stateless resume.

Used by the node's loop only; the generator runs in one worker thread at a time.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from typing import Any, Dict, Iterator, List, Optional, OrderedDict, Tuple

from .protocol import Name

log = logging.getLogger(__name__)

LEASE = 30.0  # seconds a cursor is kept after its last page
MAX_CURSORS = 64  # cursors kept at once; the least recently used is dropped beyond
CURSOR_ID_BYTES = 8


class Page:
    """One page of a cursor's walk, as a worker made it."""

    __slots__ = ("frames", "counts", "entries", "last", "finished", "base")

    def __init__(self, base: int = 0) -> None:
        self.frames: List[bytes] = []
        self.counts: List[int] = []  # entries per frame, appended before the frame
        self.base = base  # chunks the walk had made before this page
        self.entries = 0
        self.last: Optional[Name] = None  # wire name of its last entry
        self.finished = False  # the walk ended in this page


class Cursor:
    """One paged listing's walk, suspended between pages."""

    def __init__(self, key: tuple, options: Any, after: Optional[Name]) -> None:
        self.id = os.urandom(CURSOR_ID_BYTES)
        self.key = key  # path and options: a token for other options does not use it
        self.options = options  # the lister's Options, ``after`` included
        self.tail: Optional[Tuple[int, Name]] = None  # set by the worker: the last chunk's
        self.sent = after  # wire name of the last entry answered (None: nothing yet)
        self.listing = None  # the DirListing, opened by the first page's worker
        self.frames: Optional[Iterator[bytes]] = None  # its encoded chunks, suspended
        self.produced = 0  # entries taken from ``frames``
        self.chunks = 0  # chunks taken from ``frames``
        self.job = None  # the walk (walks.Walk) making the next page, while one does
        self.ahead: Optional[Page] = None  # a page made before anyone asked
        self.status = None  # the listing's SourceStatus once its walk ended
        self.request: Any = None  # the protocol.Request whose limits its pages keep
        self.used = time.monotonic()
        self.dropped = False

    def close(self) -> None:
        """End the walk (closes its descriptors); never while a worker runs it."""
        frames, self.frames = self.frames, None
        if frames is not None and hasattr(frames, "close"):
            try:
                frames.close()  # type: ignore[union-attr]
            except Exception as exc:  # a bug: log it, the node goes on
                log.error("closing a cursor failed", exc_info=exc)
        listing, self.listing = self.listing, None
        if listing is not None:
            listing.close()


class Cursors:
    """The node's cursors by id, with their leases."""

    def __init__(self, lease: float = LEASE, limit: int = MAX_CURSORS) -> None:
        self.lease = lease
        self.limit = limit
        self._items: OrderedDict[bytes, Cursor] = collections.OrderedDict()
        # Cursors still making their first page, by key: the same listing asked for
        # again meanwhile (a retry, another user) joins that page.
        self.starting: Dict[tuple, Cursor] = {}

    def __len__(self) -> int:
        return len(self._items)

    def find(self, cursor_id: Optional[bytes], key: tuple, after: Optional[Name],
             now: float) -> Optional[Cursor]:
        """The live cursor a token names, if it is this listing's and stands at ``after``."""
        if cursor_id is None:
            return None
        cursor = self._items.get(cursor_id)
        if cursor is None or cursor.key != key or cursor.sent != after:
            return None
        if now - cursor.used > self.lease:
            self.drop(cursor)
            return None
        self._items.move_to_end(cursor_id)
        cursor.used = now
        return cursor

    def joinable(self, key: tuple) -> Optional[Cursor]:
        """A cursor of this listing whose first page is being made, to share."""
        cursor = self.starting.get(key)
        if cursor is None or cursor.dropped or cursor.job is None or cursor.sent is not None:
            return None
        return cursor

    def add(self, cursor: Cursor) -> None:
        self._items[cursor.id] = cursor
        if cursor.sent is None:
            self.starting[cursor.key] = cursor
        while len(self._items) > self.limit:
            _, oldest = next(iter(self._items.items()))
            self.drop(oldest)

    def drop(self, cursor: Cursor) -> None:
        """Forget ``cursor``; its walk is closed now, or when its running page is done."""
        self._items.pop(cursor.id, None)
        if self.starting.get(cursor.key) is cursor:
            del self.starting[cursor.key]
        cursor.dropped = True
        if cursor.job is None:
            cursor.close()

    def next_expiry(self) -> Optional[float]:
        """When the least recently used cursor's lease ends (None: no cursor)."""
        oldest = next(iter(self._items.values()), None)
        return None if oldest is None else oldest.used + self.lease

    def expire(self, now: float) -> None:
        for cursor in [c for c in self._items.values() if now - c.used > self.lease]:
            self.drop(cursor)

    def close(self) -> None:
        for cursor in list(self._items.values()):
            self.drop(cursor)
