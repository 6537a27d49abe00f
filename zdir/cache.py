"""Encoded listings kept between requests, served only while their directory is unchanged.

Pure: no sockets, no filesystem calls of its own. The node gives it the
directory's change stamp (``DirListing.stamp``: device, inode, mtime and ctime
in nanoseconds) and the chunk frames it encoded; a later request for the same
directory and options gets those frames back, untouched, if the stamp still
matches. What a cached answer may hold:

- **Names and types are current.** Creating, removing or renaming an entry
  changes its directory's mtime and ctime; the node stats the directory on every
  request. A listing is cached only if the directory had not changed for
  ``SETTLE`` seconds when the listing began: a change in the same clock tick as
  the one recorded would leave the stamp as it was.
- **Sizes, mtimes and modes may be up to ``stat_ttl`` seconds old.** Writing to
  a file or changing its mode does not touch its directory, so a listing with
  stat columns expires after ``stat_ttl`` (like NFS's attribute cache); 0 never
  keeps one.
- **Recursive and partial listings are never cached**: a change deep in a tree
  does not reach the top directory's stamp.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Hashable, Iterator, NamedTuple, Optional, OrderedDict, Sequence, Tuple

from .lister import DirListing
from .protocol import Chunk

SETTLE = 2.0  # seconds a directory must have been unchanged before its listing is kept

Stamp = Tuple[int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_ctime_ns


class Cached(NamedTuple):
    """One kept listing: its chunk frames and what the source status reports."""

    chunks: Tuple[bytes, ...]
    entries: int
    stamp: Stamp
    expires: Optional[float]  # time.monotonic() after which it is not served; None: never
    size: int  # bytes held


class ListingCache:
    """Least recently used listings within a byte budget; safe to share between threads."""

    def __init__(self, max_bytes: int, stat_ttl: float) -> None:
        self.max_bytes = max_bytes
        self.stat_ttl = stat_ttl
        self.bytes = 0
        self._items: OrderedDict[Hashable, Cached] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: Stamp) -> Optional[Cached]:
        """The listing kept for ``key`` if the directory still has ``stamp``, else None."""
        with self._lock:
            cached = self._items.get(key)
            if cached is None:
                return None
            if cached.stamp != stamp or (
                cached.expires is not None and time.monotonic() >= cached.expires
            ):
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return cached

    def worth_keeping(self, stamp: Stamp, with_stat: bool, began: float) -> bool:
        """Whether a listing that began at ``began`` (``time.time()``) may be kept at all."""
        if self.max_bytes <= 0 or (with_stat and self.stat_ttl <= 0):
            return False
        settled_ns = (began - SETTLE) * 1e9
        return stamp[2] <= settled_ns and stamp[3] <= settled_ns

    def put(self, key: Hashable, stamp: Stamp, with_stat: bool, chunks: Sequence[bytes],
            entries: int) -> None:
        """Keep a listing (checked with ``worth_keeping`` first); evicts the oldest to fit."""
        size = sum(map(len, chunks))
        if size > self.max_bytes:
            return
        expires = time.monotonic() + self.stat_ttl if with_stat else None
        with self._lock:
            if key in self._items:
                self._drop(key)
            while self._items and self.bytes + size > self.max_bytes:
                self._drop(next(iter(self._items)))
            self._items[key] = Cached(tuple(chunks), entries, stamp, expires, size)
            self.bytes += size

    def _drop(self, key: Hashable) -> None:
        self.bytes -= self._items.pop(key).size

    def frames(self, listing: DirListing, encode: Callable[[Chunk], bytes]) -> Iterator[bytes]:
        """The listing's encoded chunk frames: kept ones while the directory is unchanged.

        Otherwise ``listing`` is iterated and each chunk encoded, and a copy is kept when
        the rules above allow. Served from memory, ``listing.entries`` is set to the
        kept count and the listing is closed. Recursive listings are never kept.
        """
        options = listing.options
        if options.recursive:
            for chunk in listing:
                yield encode(chunk)
            return
        began = time.time()
        stamp = listing.stamp()
        key = (stamp[0], stamp[1], options.all, options.stat, options.glob, options.exclude)
        kept = self.get(key, stamp)
        if kept is not None:
            listing.close()
            listing.entries = kept.entries
            yield from kept.chunks
            return
        made = []
        for chunk in listing:
            frame = encode(chunk)
            made.append(frame)
            yield frame
        if not listing.truncated and self.worth_keeping(stamp, options.stat, began):
            self.put(key, stamp, options.stat, made, listing.entries)
