"""Portable directory listing confined to a root: os.scandir, never a subprocess.

Knows nothing of sockets. The path is confined to the root first (zdir/confine.py:
checked as text, resolved by hand, opened with ``O_NOFOLLOW`` directory
descriptors where the platform has them); the walk below it opens each
sub-directory the same way, so a directory swapped for a symlink is refused, never
followed. Entries come out in column chunks (``protocol.Chunk``) so that no caller needs a
whole huge listing in memory. Beside the walk: glob matching (zdir/globs.py), the
chunk being gathered (zdir/chunkcolumns.py) and type letters (zdir/entrytypes.py).

Order: every listing comes out in one total order, so that listings from many
sources can be merged as they stream (a k-way merge on ``order_key``):

- one level: by name, in Python ``str`` order, which is Unicode code-point order
  (for valid names, the same as UTF-8 byte order). A name's undecodable bytes are
  surrogate escapes U+DC80..U+DCFF (``os.fsdecode``; ``protocol.name_from_wire``
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
import stat as stat_module
import sys
import time
from typing import Dict, Generator, Iterator, List, NamedTuple, Optional, Tuple, Union

from . import namesort
from .chunkcolumns import ChunkColumns
from .links import read_target
from .confine import (ON_WINDOWS, OPEN_DIR_FLAGS, USE_DIR_FD, PathArg, inside, open_confined,
                      refusal, refuse, resolve, split_path, swapped)
from .entrytypes import LETTERS, is_junction, letter_from_entry, windows_stat
from .errors import ListingError
from .globs import check_patterns, matches, row_matches
from .protocol import Chunk, ErrorCode, Name, name_from_wire

DEFAULT_CHUNK_ENTRIES = 10_000
DEFAULT_MAX_ENTRIES = 2_000_000
DEFAULT_MAX_DEPTH = 64


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

        Full chunks are yielded on the way. With stat columns each entry is lstat-ed
        here, as it is listed; without them, never.
        """
        options = self.options
        with_stat, patterns, limit = options.stat, options.glob, options.max_entries
        chunk_entries, page_end = options.chunk_entries, self.page_end
        handle, prefix, descend, infos = frame.handle, frame.prefix, frame.descend, frame.infos
        by_fd = isinstance(handle, int)
        bound, frame.bound = frame.bound, ()
        for row in frame.rows:  # an iterator: a walk into a child resumes it after
            name, letter = row[:-2], row[-1]  # namesort.row_name, inlined: once per entry
            if bound:  # resuming: this name is the position, or holds it in its sub-tree
                if name == bound[0]:
                    if descend and letter == "d":
                        child = self._child(frame, name, columns.count, bound[1:])
                        if child is not None:
                            return child
                    continue
                bound = ()
            if with_stat:
                info = infos.get(name) if infos is not None else None
                if info is None:
                    try:
                        if by_fd:
                            info = os.stat(name, dir_fd=handle, follow_symlinks=False)
                        else:
                            info = os.lstat(os.path.join(handle, name))
                    except OSError:  # vanished between readdir and stat
                        info = None
                if info is not None:
                    letter = self._letter(info, letter)
            if not patterns or matches(name, patterns):
                if columns.count == limit:
                    raise _Full
                columns.count += 1
                columns.names.append(prefix + name)
                columns.types.append(letter)
                if with_stat:
                    columns.add_stat(info)
                if columns.targets is not None:
                    columns.targets.append(
                        None if letter != "l" else
                        read_target(name, handle, self._depth + frame.depth - 1))
                if (len(columns.names) >= chunk_entries or columns.count >= page_end
                        or (not columns.count & 127 and time.monotonic() >= self.flush_at)):
                    yield columns.take()
                    page_end = self.page_end
            if descend and letter == "d":
                child = self._child(frame, name, columns.count)
                if child is not None:
                    return child
        return None

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
        try:
            with os.scandir(handle) as scan:
                for entry in scan:
                    name = entry.name
                    if hidden and name[0] == ".":
                        continue
                    if first is not None and name < first:
                        continue
                    if exclude and matches(name, exclude):
                        continue
                    letter = letter_from_entry(entry)
                    info = None
                    if ON_WINDOWS and (options.stat or letter == "d"):
                        info = windows_stat(entry)
                        if info is not None and letter == "d" and is_junction(info):
                            letter = "l"  # a link in all but name: listed, never walked
                    if patterns and not (descend and letter == "d") \
                            and not matches(name, patterns):
                        continue
                    if infos is not None and info is not None:
                        infos[name] = info
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

    def _letter(self, info: os.stat_result, letter: str) -> str:
        """The type letter from an lstat (a junction stays a link); notes shared inodes."""
        if ON_WINDOWS:
            return letter if letter == "l" else LETTERS.get(stat_module.S_IFMT(info.st_mode), "o")
        letter = LETTERS.get(stat_module.S_IFMT(info.st_mode), "o")
        if letter != "d" and (info.st_nlink > 1 or info.st_dev != self._dev):
            self.shared_inodes = True
        return letter

    def _warn(self, where: str, exc: OSError) -> None:
        """A sub-directory could not be listed: go on, but the answer is partial."""
        self.warning = self.warning or refusal(exc, where)
        self.truncated = True


class _Full(Exception):
    """Raised inside the walk when the entry limit is reached."""


class _Frame:
    """One directory on the walk's stack: its rows in order, consumed as they are listed."""

    __slots__ = ("handle", "prefix", "depth", "descend", "rows", "infos", "owned", "bound")

    def __init__(self, handle: Union[int, str], prefix: str, depth: int, descend: bool,
                 rows: Iterator[str], infos: Optional[Dict[str, os.stat_result]],
                 owned: bool, bound: Tuple[str, ...] = ()) -> None:
        self.handle = handle
        self.prefix = prefix
        self.depth = depth
        self.descend = descend
        self.rows = rows  # ``namesort`` rows, name + NUL + type letter
        self.infos = infos  # Windows' free stat by name, for a small directory
        self.owned = owned  # a descriptor the walk opened, so closes
        self.bound = bound  # resuming: the position below this directory (see ``_frame``)

    def close(self) -> None:
        if self.owned:
            self.owned = False
            os.close(self.handle)  # type: ignore[arg-type]
