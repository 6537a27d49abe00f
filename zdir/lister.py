"""Portable directory listing confined to a root: os.scandir, never a subprocess.

Knows nothing of sockets. The path is confined to the root first (zdir/confine.py:
checked as text, resolved by hand, opened with ``O_NOFOLLOW`` directory
descriptors where the platform has them); the walk below it opens each
sub-directory the same way, so a directory swapped for a symlink is refused, never
followed. Entries come out in column chunks (``chunkframes.Chunk``) so that no caller
needs a whole huge listing in memory. Beside the walk: glob matching (zdir/globs.py), the
chunk being gathered (zdir/chunkcolumns.py), type letters (zdir/entrytypes.py) and
the stat columns of a batch of entries (zdir/lstats.py).

Order: every listing comes out in one total order, so that listings from many
sources can be merged as they stream (a k-way merge on ``order_key``):

- one level: by name, in Python ``str`` order, which is Unicode code-point order
  (for valid names, the same as UTF-8 byte order). A name's undecodable bytes are
  surrogate escapes U+DC80..U+DCFF (``os.fsdecode``; ``chunkframes.name_from_wire``
  gives them back from the wire's raw bytes) and sort as those code points.
- recursive: component by component, as ``find -s`` and ``tree`` do. The walk is
  depth-first and pre-order: each directory's entries sorted by name, and a
  directory's subtree right after the directory's own entry: ``a``, ``a/x``,
  ``a/y``, ``a-b``, ``b`` ("a/x" comes before "a-b" because "a" < "a-b").

To sort, the walk reads each directory on its current path whole, never the whole
tree, and holds one descriptor per level. A directory of up to
``namesort.RUN_ENTRIES`` names is sorted as a list; a bigger one in sorted runs
packed as bytes and merged as it is listed (``namesort``): about the names' own
size in memory, and never more than about twice the entry limit of them. It is a
loop over an explicit stack: no depth limit comes from Python's recursion limit.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from itertools import compress
from typing import Dict, Generator, Iterator, List, NamedTuple, Optional, Tuple, Union

from . import namesort
from .chunkcolumns import ChunkColumns
from .links import read_target
from .confine import (ON_WINDOWS, OPEN_DIR_FLAGS, USE_DIR_FD, PathArg, inside, open_confined,
                      refusal, refuse, resolve, split_path, swapped)
from .entrytypes import is_junction, letter_from_entry, windows_stat
from .errors import ListingError
from .globs import check_patterns, matches, row_matches
from .lstats import (Infos, StatColumns, lstat_names, shares_inodes, stat_columns,
                     type_letters)
from .chunkframes import Chunk, name_from_wire
from .protocol import ErrorCode, Name

DEFAULT_CHUNK_ENTRIES = 10_000
DEFAULT_MAX_ENTRIES = 2_000_000
DEFAULT_MAX_DEPTH = 64
# Entries lstat-ed and added to a chunk together (zdir/lstats.py): enough to spread
# the cost of doing it column by column, few enough that a page_ms flush, or the
# snapshot of a walk stuck in a stat, misses at most this many.
STAT_BATCH = 64


class Options(NamedTuple):
    """What to list and how much of it; limits are the server's, not the client's."""

    all: bool = False
    stat: bool = True
    recursive: bool = False
    max_depth: Optional[int] = None
    glob: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    chunk_entries: int = DEFAULT_CHUNK_ENTRIES
    max_entries: int = DEFAULT_MAX_ENTRIES
    depth_limit: int = DEFAULT_MAX_DEPTH
    targets: bool = False  # symlink targets that stay inside the root (zdir/links.py)
    # Resume: list only what comes after this position, an ``order_key`` (() from the start).
    after: Tuple[str, ...] = ()
    page_entries: Optional[int] = None  # paged: a chunk also ends at every multiple of this


def order_key(path: Name) -> Tuple[str, ...]:
    """The sort key of a listed path in the listing order: its components, as text.

    ``sorted(paths, key=order_key)`` is the order in which a source sends them, so a
    client merges sources with ``heapq.merge(*sources, key=order_key)``. A wire name
    (``str``, or ``bytes`` when it is not UTF-8) is decoded as ``name_from_wire`` does.
    """
    return tuple(name_from_wire(path).split("/"))


class DirListing:
    """The listing of one directory (or tree) under a root, produced chunk by chunk.

    Construction resolves and opens the directory, raising ``ListingError`` with a
    protocol code; iterating yields ``Chunk``s. After iteration, ``entries``,
    ``truncated`` and ``warning`` (the first problem met below the top) are set.
    """

    def __init__(self, root: str, path: PathArg, options: Optional[Options] = None) -> None:
        self.root = root
        self.options = options = options or Options()
        self.entries = 0
        self.truncated = False
        self.warning: Optional[ListingError] = None
        # True when, with stat columns, an entry's inode can change without this
        # directory hearing of it (more hard links, or a mount): see cache.py.
        self.shared_inodes = False
        self._dev: Optional[int] = None
        self._columns: Optional[ChunkColumns] = None  # the entries of the chunk being gathered
        self._cancelled = False
        # Paging: a chunk also ends once ``page_end`` entries are listed in all, and at
        # the first chance after ``flush_at`` (time.monotonic()); set between chunks.
        self.page_end = options.page_entries or sys.maxsize
        self.flush_at = float("inf")
        check_patterns(options.glob + options.exclude)
        parts = resolve(root, split_path(path))
        self._depth = len(parts)  # directories between the root and the listed one
        full = os.path.join(root, *parts)
        # Second check: junctions, races. The root itself is real already (nodes take
        # its realpath at start-up), and this costs an lstat per component of it.
        if parts:
            try:
                real = os.path.realpath(full)
            except OSError as exc:  # a component swapped between realpath's lstat and readlink
                raise swapped(exc) from None
            if not inside(real, root):
                raise refuse(ErrorCode.OUTSIDE_ROOT, "the path resolves outside the root")
        self._fd: Optional[int] = None
        self._path = full
        if USE_DIR_FD:
            self._fd = open_confined(root, parts)
        elif not os.path.isdir(full):
            raise refuse(ErrorCode.NOT_A_DIRECTORY, "not a directory")

    def __iter__(self) -> Iterator[Chunk]:
        options = self.options
        columns = self._columns = ChunkColumns(options.stat, options.targets)
        stack: List[_Frame] = []
        try:
            top = self._fd if self._fd is not None else self._path
            if options.stat and not ON_WINDOWS:
                self._dev = os.stat(top).st_dev  # an fstat when top is a descriptor
            stack.append(self._frame(top, "", 1, owned=False, gathered=0,
                                     bound=options.after))
            while stack:  # the walk: a loop over a stack, never recursion
                if self._cancelled:
                    self.truncated = True
                    break
                child = yield from self._emit(stack[-1], columns)
                if child is None:
                    stack.pop().close()
                else:
                    stack.append(child)
        except _Full:
            self.truncated = True
            self.warning = refuse(
                ErrorCode.LIMIT_EXCEEDED,
                f"listing stopped at the server's limit of {options.max_entries} entries",
            )
        finally:
            for frame in stack:
                frame.close()
            self.close()
            self.entries = columns.count
        if columns.names:
            yield columns.take()

    def _emit(self, frame: "_Frame",
              columns: "ChunkColumns") -> Generator[Chunk, None, Optional["_Frame"]]:
        """List the frame's rows in order, up to a sub-directory to walk (returned) or the end.

        A segment of rows at a time (``_segment``): with stat columns each segment is
        lstat-ed here, as it is listed (never without them), and added column by
        column. Full chunks are yielded on the way.
        """
        if frame.bound and frame.more():
            child = self._resume(frame, columns)
            if child is not None:
                return child
        options = self.options
        chunk_entries, patterns = options.chunk_entries, options.glob
        prefix, descend = frame.prefix, frame.descend
        while frame.more():
            start = frame.at
            end, listed = self._segment(frame, columns)
            names, letters = frame.names[start:end], frame.letters[start:end]
            stats = None
            if options.stat:
                infos = self._lstat(frame, names)
                stats = stat_columns(infos)
                letters = self._letters(infos, stats, letters)
                walk_at = letters.find("d") if descend else -1
                if 0 <= walk_at < len(names) - 1:  # a directory where readdir saw none
                    del names[walk_at + 1:], listed[walk_at + 1:]
                    letters, stats = letters[:walk_at + 1], stats.head(walk_at + 1)
            frame.at = start + len(names)
            shown, types = names, letters
            if patterns:
                shown, types = list(compress(names, listed)), "".join(compress(letters, listed))
                if stats is not None:
                    stats = stats.picked(listed)
            if shown:
                targets = None
                if columns.targets is not None:
                    targets = self._targets(frame, shown, types)
                columns.add([prefix + name for name in shown] if prefix else shown, types, stats,
                            targets)
                if (len(columns.names) >= chunk_entries or columns.count >= self.page_end
                        or time.monotonic() >= self.flush_at):
                    yield columns.take()
            if descend and letters[-1] == "d":
                child = self._child(frame, names[-1], columns.count)
                if child is not None:
                    return child
        return None

    def _segment(self, frame: "_Frame", columns: "ChunkColumns") -> Tuple[int, List[bool]]:
        """Where the frame's next segment ends, and which of its rows are listed (globs).

        At most ``STAT_BATCH`` rows, never past the end of a chunk, and a directory
        readdir says will be walked into is a segment of its own. Raises ``_Full``
        when the next row to list is one past the entry limit.
        """
        options = self.options
        start, names = frame.at, frame.names
        end = min(len(names), start + STAT_BATCH)
        if frame.descend:
            walk_at = frame.letters.find("d", start, end)
            if walk_at >= 0:
                end = walk_at + 1 if walk_at == start else walk_at
        room = min(options.chunk_entries - len(columns.names),
                   max(self.page_end - columns.count, 1),
                   options.max_entries - columns.count)
        patterns = options.glob
        listed = [matches(name, patterns) for name in names[start:end]] if patterns else []
        if not patterns:
            end = min(end, start + room)
        elif sum(listed) > room:
            end = start + [index for index, shown in enumerate(listed) if shown][room]
            del listed[end - start:]
        if end == start:
            raise _Full
        return end, listed

    def _targets(self, frame: "_Frame", names: List[str], types: str) -> List[Optional[str]]:
        """The symlink target of each entry that is a link (zdir/links.py), None for others."""
        if "l" not in types:  # most segments: no link to read
            return [None] * len(names)
        depth = self._depth + frame.depth - 1
        return [None if letter != "l" else read_target(name, frame.handle, depth)
                for name, letter in zip(names, types)]

    def _resume(self, frame: "_Frame", columns: "ChunkColumns") -> Optional["_Frame"]:
        """Resuming: the frame's first row may be the position, listed already, or hold it
        in its sub-tree (walked into, from there on)."""
        bound, frame.bound = frame.bound, ()
        name, letter = frame.names[frame.at], frame.letters[frame.at]
        if name != bound[0]:
            return None
        frame.at += 1
        if frame.descend and letter == "d":
            return self._child(frame, name, columns.count, bound[1:])
        return None

    @staticmethod
    def _lstat(frame: "_Frame", names: List[str]) -> Infos:
        """The lstat of each name, Windows' from readdir where the frame kept it."""
        known = frame.infos
        if known is None:
            return lstat_names(frame.handle, names)
        infos = list(map(known.get, names))
        if None in infos:
            again = iter(lstat_names(frame.handle,
                                     [name for name, info in zip(names, infos) if info is None]))
            infos = [next(again) if info is None else info for info in infos]
        return infos

    def _letters(self, infos: Infos, stats: StatColumns, readdir: str) -> str:
        """The type letters from lstat (a junction stays a link); notes shared inodes."""
        letters = type_letters(stats, readdir)
        if ON_WINDOWS:
            if "l" in readdir:
                letters = "".join(seen if seen == "l" else letter
                                  for seen, letter in zip(readdir, letters))
        elif not self.shared_inodes:
            self.shared_inodes = shares_inodes(infos, letters, self._dev,  # type: ignore[arg-type]
                                               stats.whole)
        return letters

    def cancel(self) -> None:
        """Stop the walk before its next directory (from any thread): nobody waits for it.

        Chunks are few when a glob matches little, so the consumer cannot stop a long
        walk between chunks alone. A walk blocked in the file system (a hung readdir or
        stat) stops once that call returns, if it ever does.
        """
        self._cancelled = True

    def gathered(self) -> Tuple[int, Optional[Chunk]]:
        """Chunks yielded so far, and a copy of the entries gathered since (None if none).

        For another thread, e.g. a node answering at a deadline while this walk is
        blocked in a hung readdir or stat: what it had found before it stuck. It never
        changes the walk, and returns only entries whose every column is written.
        """
        columns = self._columns
        if columns is None:
            return 0, None
        return columns.peek()

    def stamp(self) -> Tuple[int, int, int, int]:
        """``(st_dev, st_ino, st_mtime_ns, st_ctime_ns)`` of the opened directory.

        Adding, removing or renaming an entry changes the directory's mtime and
        ctime, so a cache can tell with this one ``fstat`` whether its names are
        still current (a file's size or mtime changing does not touch it).
        """
        info = os.fstat(self._fd) if self._fd is not None else os.stat(self._path)
        return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_ctime_ns

    @property
    def path(self) -> str:
        """The directory's absolute path, as resolved inside the root."""
        return self._path

    def fileno(self) -> Optional[int]:
        """The open directory's descriptor (None by path, or once listed): for a watch on it."""
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _frame(self, handle: Union[int, str], prefix: str, depth: int, owned: bool,
               gathered: int, bound: Tuple[str, ...] = ()) -> "_Frame":
        """Read one directory whole, its kept entries sorted by name (the walk's order).

        Kept: what will be listed, and what will be walked into. Hidden and excluded
        names are dropped at once, as are names a glob refuses that are not walked.
        A big directory is held as packed sorted runs (``namesort.SortedRows``).
        ``bound``: resuming, the position's components from this level down; names
        before ``bound[0]`` are already listed, so they are dropped as they are read.
        """
        first = bound[0] if bound else None
        options = self.options
        descend = options.recursive and (options.max_depth is None or depth < options.max_depth)
        hidden, exclude, patterns = not options.all, options.exclude, options.glob
        keep = options.max_entries - gathered + 1  # one more than fits: it says "truncated"
        listed = functools.partial(row_matches, patterns=patterns) if patterns else None
        sorter = namesort.SortedRows(keep, listed)
        rows, check_at = sorter.rows, sorter.check_at
        append = rows.append
        # Windows gives an entry's stat with its name: kept for the stat columns while
        # the directory is small; a big one is lstat-ed as it is listed, as on POSIX.
        infos: Optional[Dict[str, os.stat_result]] = {} if ON_WINDOWS and options.stat else None
        # Checked per entry only when asked for (most listings need neither): names
        # before the resume position or excluded; Windows' stat, or a glob (``_kept``).
        screened, special = first is not None or bool(exclude), ON_WINDOWS or bool(patterns)
        try:
            with os.scandir(handle) as scan:
                for entry in scan:
                    name = entry.name
                    if hidden and name[0] == ".":
                        continue
                    if screened and (first is not None and name < first
                                     or exclude and matches(name, exclude)):
                        continue
                    letter = letter_from_entry(entry)
                    if special:
                        letter = self._kept(entry, letter, descend, infos)
                        if letter is None:
                            continue
                    append(name + "\0" + letter)  # namesort.row, inlined: once per entry
                    if len(rows) >= check_at:
                        sorter.settle()
                        rows, check_at = sorter.rows, sorter.check_at
                        append = rows.append
                        infos = None
        except OSError as exc:
            if owned:
                os.close(handle)  # type: ignore[arg-type]
            if not prefix:  # the requested directory itself
                raise refusal(exc) from None
            self._warn(prefix, exc)
            return _Frame(handle, prefix, depth, descend, iter(()), None, owned=False)
        return _Frame(handle, prefix, depth, descend, sorter.drain(), infos, owned, bound)

    def _kept(self, entry: os.DirEntry, letter: str, descend: bool,
              infos: Optional[Dict[str, os.stat_result]]) -> Optional[str]:
        """For ``_frame``: the type letter of an entry it keeps, None for one a glob drops.

        On Windows the entry's stat comes with its name (kept in ``infos``), and a
        junction is a link in all but name: listed, never walked.
        """
        info = None
        if ON_WINDOWS and (self.options.stat or letter == "d"):
            info = windows_stat(entry)
            if info is not None and letter == "d" and is_junction(info):
                letter = "l"
        patterns = self.options.glob
        if patterns and not (descend and letter == "d") and not matches(entry.name, patterns):
            return None
        if infos is not None and info is not None:
            infos[entry.name] = info
        return letter

    def _child(self, frame: "_Frame", name: str, gathered: int,
               bound: Tuple[str, ...] = ()) -> Optional["_Frame"]:
        """The frame of a sub-directory to walk next; None when it cannot be (warned)."""
        if frame.depth >= self.options.depth_limit:
            self.truncated = True
            self.warning = self.warning or refuse(
                ErrorCode.LIMIT_EXCEEDED,
                f"did not descend below the server's depth limit of {self.options.depth_limit}",
            )
            return None
        prefix = frame.prefix + name + "/"
        if isinstance(frame.handle, int):
            try:
                fd = os.open(name, OPEN_DIR_FLAGS, dir_fd=frame.handle)
            except OSError as exc:  # vanished, unreadable, or swapped for a symlink
                self._warn(prefix[:-1], exc)
                return None
            return self._frame(fd, prefix, frame.depth + 1, owned=True, gathered=gathered,
                               bound=bound)
        return self._frame(os.path.join(frame.handle, name), prefix, frame.depth + 1,
                           owned=False, gathered=gathered, bound=bound)

    def _warn(self, where: str, exc: OSError) -> None:
        """A sub-directory could not be listed: go on, but the answer is partial."""
        self.warning = self.warning or refusal(exc, where)
        self.truncated = True


class _Full(Exception):
    """Raised inside the walk when the entry limit is reached."""


class _Frame:
    """One directory on the walk's stack: its rows in order, consumed as they are listed."""

    __slots__ = ("handle", "prefix", "depth", "descend", "batches", "names", "letters", "at",
                 "infos", "owned", "bound")

    def __init__(self, handle: Union[int, str], prefix: str, depth: int, descend: bool,
                 batches: Iterator[List[str]], infos: Optional[Dict[str, os.stat_result]],
                 owned: bool, bound: Tuple[str, ...] = ()) -> None:
        self.handle = handle
        self.prefix = prefix
        self.depth = depth
        self.descend = descend
        self.batches = batches  # sorted ``namesort`` rows, a batch at a time
        self.names: List[str] = []  # the batch being listed, split: its names ...
        self.letters = ""  # ... their type letters from readdir ...
        self.at = 0  # ... and the next one to list
        self.infos = infos  # Windows' free stat by name, for a small directory
        self.owned = owned  # a descriptor the walk opened, so closes
        self.bound = bound  # resuming: the position below this directory (see ``_frame``)

    def more(self) -> bool:
        """Whether rows are left to list; the next batch is split once this one is listed."""
        while self.at == len(self.names):
            batch = next(self.batches, None)
            if batch is None:
                return False
            self.names, self.letters = namesort.split_rows(batch)
            self.at = 0
        return True

    def close(self) -> None:
        if self.owned:
            self.owned = False
            os.close(self.handle)  # type: ignore[arg-type]
