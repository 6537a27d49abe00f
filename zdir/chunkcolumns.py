"""A chunk's columns as the walk gathers them: one list per field, taken whole or peeked at.

Apart from the walk because another thread may ``peek`` while the walk adds
(a node answering at a deadline while the walk is stuck in the file system).
"""

from __future__ import annotations

import threading
from typing import List, Optional, Tuple, Union

from .lstats import StatColumns
from .chunkframes import Chunk, name_to_wire
from .protocol import Name


class ChunkColumns:
    """Entries being gathered for the next chunk, one list per field, in walk order."""

    def __init__(self, with_stat: bool, with_targets: bool = False) -> None:
        self.with_stat = with_stat
        self.with_targets = with_targets
        self.count = 0
        self.taken = 0  # chunks taken
        self._lock = threading.Lock()  # take() against peek() from another thread
        self._reset()

    def _reset(self) -> None:
        self.names: List[str] = []
        self.types: List[str] = []
        self.sizes: Optional[List[Optional[int]]] = [] if self.with_stat else None
        self.mtimes: Optional[List[Optional[float]]] = [] if self.with_stat else None
        self.modes: Optional[List[Optional[int]]] = [] if self.with_stat else None
        self.targets: Optional[List[Optional[str]]] = [] if self.with_targets else None

    def add(self, names: List[str], types: str, stats: Optional[StatColumns],
            targets: Optional[List[Optional[str]]]) -> None:
        """Entries in walk order: each column is extended once (a step no other thread sees
        half of), in the order ``peek`` needs.

        ``stats`` and ``targets`` are None when the listing has no such columns.
        """
        self.count += len(names)
        self.names.extend(names)
        self.types.extend(types)
        if stats is not None:
            self.sizes.extend(stats.sizes)  # type: ignore[union-attr]
            self.mtimes.extend(stats.mtimes)  # type: ignore[union-attr]
            self.modes.extend(stats.modes)  # type: ignore[union-attr]
        if targets is not None:
            self.targets.extend(targets)  # type: ignore[union-attr]

    def take(self) -> Chunk:
        """The gathered entries as one chunk; the columns start again empty."""
        with self._lock:
            chunk = Chunk(_wire_names(self.names), "".join(self.types),
                          self.sizes, self.mtimes, self.modes, _wire_targets(self.targets))
            self._reset()
            self.taken += 1
        return chunk

    def peek(self) -> Tuple[int, Optional[Chunk]]:
        """``(taken, copy)`` of the entries gathered so far, safe while they are added to."""
        with self._lock:
            # Copied in the reverse of the order an entry's columns are added in, so
            # the shortest copy says how many entries are whole in all of them.
            targets = None if self.targets is None else self.targets[:]
            stat = [None if c is None else c[:] for c in (self.modes, self.mtimes, self.sizes)]
            types, names = self.types[:], self.names[:]
            taken = self.taken
        whole = min(len(c) for c in (targets, *stat, types, names) if c is not None)
        if not whole:
            return taken, None
        modes, mtimes, sizes = (None if c is None else c[:whole] for c in stat)
        return taken, Chunk(_wire_names(names[:whole]), "".join(types[:whole]),
                            sizes, mtimes, modes,
                            None if targets is None else _wire_targets(targets[:whole]))


def _wire_targets(targets: Optional[List[Optional[str]]]) -> Optional[List[Optional[Name]]]:
    if targets is None:
        return None
    return [None if target is None else name_to_wire(target) for target in targets]


def _wire_names(names: List[str]) -> List[Union[str, bytes]]:
    """``name_to_wire`` for a whole chunk: one check when every name is valid UTF-8."""
    try:
        "".join(names).encode("utf-8")
    except UnicodeEncodeError:
        return [name_to_wire(name) for name in names]
    return names
