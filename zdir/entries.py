"""A listing's entries held column by column: compact to keep, quick to sort and to write.

A list of ``Entry`` tuples costs about 104 bytes per entry on top of the values;
``Entries`` keeps one list per field (18 to 44 bytes per entry), filled as the
chunks arrive, and makes an ``Entry`` only when one is asked for. Pure: no sockets.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Callable, Iterable, Iterator, List, NamedTuple, Optional, Sequence
from typing import Tuple, Union
from typing import overload

from .chunkframes import Chunk, name_from_wire
from .protocol import ENTRY_TYPES, TYPE_LETTERS

BATCH_ENTRIES = 10_000  # entries a writer formats at a time


class Entry(NamedTuple):
    """One directory entry from one source.

    ``name`` is a str; a name that is not valid UTF-8 holds surrogate escapes, and
    ``os.fsencode(name)`` (POSIX) gives back its exact bytes. ``size``, ``mtime``
    (seconds since the epoch) and ``mode`` (``st_mode``) are None when not asked for;
    ``target`` is a symlink's target when asked for and it stays inside the root.
    """

    name: str
    type: str
    size: Optional[int]
    mtime: Optional[float]
    mode: Optional[int]
    source: str
    target: Optional[str] = None


Column = Optional[list]  # None: no entry has this field (the request had stat off)


class Entries(Sequence[Entry]):
    """Entries of one or more sources, one list per field; a sequence of ``Entry``.

    ``names``, ``sources`` (one reference per entry to a shared string) and, when
    stat was asked, ``sizes``, ``mtimes`` and ``modes`` are lists; ``types`` is a
    string of one letter per entry (``f d l o``, see ``protocol.ENTRY_TYPES``).
    Entries keep their arrival order until ``sort``: each source's entries
    together, in the reply's order of sources.
    """

    __slots__ = ("names", "types", "sizes", "mtimes", "modes", "sources", "targets")

    def __init__(self, names: List[str], types: str, sizes: Column, mtimes: Column,
                 modes: Column, sources: List[str], targets: Column = None) -> None:
        self.names = names
        self.types = types
        self.sizes = sizes
        self.mtimes = mtimes
        self.modes = modes
        self.sources = sources
        self.targets = targets  # symlink targets, when the request asked for them

    @classmethod
    def from_chunk(cls, source: str, chunk: Chunk) -> "Entries":
        """One chunk's entries (wire names turned into str)."""
        names = chunk.names
        if not all(map(str.__instancecheck__, names)):
            names = list(map(name_from_wire, names))
        targets = chunk.targets
        if targets is not None:
            targets = [t if t is None else name_from_wire(t) for t in targets]
        return cls(names, chunk.types, chunk.sizes, chunk.mtimes, chunk.modes,
                   [source] * len(names), targets)

    @classmethod
    def from_chunks(cls, chunks: Iterable[Tuple[str, Chunk]]) -> "Entries":
        """All entries of the chunks, in order; each chunk can be freed once it is copied in."""
        merged = cls([], "", None, None, None, [])
        types: List[str] = []
        for source, chunk in chunks:
            part = cls.from_chunk(source, chunk)
            types.append(part.types)
            merged._extend(part)
        merged.types = "".join(types)
        return merged

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> "Entries":
        """The columns of Entry tuples (any iterable of them)."""
        rows = list(entries)
        if not rows:
            return cls([], "", None, None, None, [])
        names, types, sizes, mtimes, modes, sources, targets = map(list, zip(*rows))
        letters = "".join(TYPE_LETTERS[t] for t in types)
        return cls(names, letters, *(_column(c) for c in (sizes, mtimes, modes)), sources,
                   _column(targets))

    def _extend(self, other: "Entries") -> None:
        """Append other's columns (types excepted: ``from_chunks`` joins them once)."""
        before, count = len(self.names), len(other.names)
        self.names += other.names
        self.sources += other.sources
        for field in _OPTIONAL:
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine is None and theirs is None:
                continue
            if mine is None:
                mine = [None] * before
                setattr(self, field, mine)
            mine += theirs if theirs is not None else repeat(None, count)

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> "Entries": ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Entry, "Entries"]:
        if isinstance(index, slice):
            return Entries(self.names[index], self.types[index],
                           *(None if c is None else c[index]
                             for c in (self.sizes, self.mtimes, self.modes)),
                           self.sources[index],
                           None if self.targets is None else self.targets[index])
        stats = (None if c is None else c[index] for c in (self.sizes, self.mtimes, self.modes))
        return Entry(self.names[index], ENTRY_TYPES[self.types[index]], *stats,
                     self.sources[index],
                     None if self.targets is None else self.targets[index])

    def __iter__(self) -> Iterator[Entry]:
        stats = (repeat(None) if c is None else c for c in (self.sizes, self.mtimes, self.modes))
        return map(Entry, self.names, map(ENTRY_TYPES.__getitem__, self.types), *stats,
                   self.sources, repeat(None) if self.targets is None else self.targets)

    def sort(self, *, key: Optional[Callable[[str], Any]] = None, reverse: bool = False) -> None:
        """Order by name (code points; or by ``key`` of the name), in place; equal names
        keep their sources' order.

        Sorts a permutation once, then rearranges each column with it. The chunks
        arrive sorted (each node sorts its own), so this merges runs.
        """
        names = self.names
        keys = names if key is None else list(map(key, names))
        order = sorted(range(len(names)), key=keys.__getitem__)
        if reverse:
            order.reverse()
        self.names = list(map(names.__getitem__, order))
        self.types = "".join(map(self.types.__getitem__, order))
        self.sources = list(map(self.sources.__getitem__, order))
        for field in _OPTIONAL:
            column = getattr(self, field)
            if column is not None:
                setattr(self, field, list(map(column.__getitem__, order)))

    def batches(self, size: int = BATCH_ENTRIES) -> Iterator["Entries"]:
        """The entries in slices of ``size``, for writers that format a batch at a time."""
        for start in range(0, len(self.names), size):
            yield self[start:start + size]


_OPTIONAL = ("sizes", "mtimes", "modes", "targets")  # columns that may be None as a whole


def _column(values: Sequence[object]) -> Column:
    return None if all(v is None for v in values) else list(values)
