"""lstat a batch of names in one directory, and read the batch's stat columns in C.

Beside the lstat itself, the walk's cost is what Python does per entry: every call,
attribute read and append costs about a tenth of the lstat. So the walk lstats a
batch of names in one loop, and this reads the batch's columns with ``map`` over
``itemgetter`` and its type letters from a table. Pure file-system code, importing
nothing of ours but the type letters.
"""

from __future__ import annotations

import os
from itertools import compress, repeat
from operator import attrgetter, itemgetter, ne
from stat import S_IFMT
from typing import Callable, Dict, List, NamedTuple, Optional, Union

from .entrytypes import LETTERS

Infos = List[Optional[os.stat_result]]  # None: the entry vanished between readdir and lstat

# A stat_result is also the tuple (st_mode, st_ino, st_dev, st_nlink, st_uid, st_gid,
# st_size, ...) on every platform, and an item costs half an attribute to read; st_mtime,
# a float, is an attribute only.
_MODE, _DEV, _NLINK, _SIZE = itemgetter(0), itemgetter(2), itemgetter(3), itemgetter(6)
_MTIME = attrgetter("st_mtime")


class _LetterByMode(Dict[int, str]):
    """The type letter of each st_mode met so far: one lookup in C per entry."""

    def __missing__(self, mode: int) -> str:
        letter = self[mode] = LETTERS.get(S_IFMT(mode), "o")
        return letter


_LETTER_BY_MODE = _LetterByMode()  # a few dozen modes at most in practice, 65,536 ever


def lstat_names(directory: Union[int, str], names: List[str]) -> Infos:
    """Each name's lstat in ``directory`` (None for one that is gone).

    ``directory`` is an open descriptor (``dir_fd``: a directory swapped for a link
    since it was opened cannot redirect the calls) or a path.
    """
    if isinstance(directory, int):
        dir_fd: Optional[int] = directory
        paths = names
    else:
        dir_fd = None
        join = os.path.join
        paths = [join(directory, name) for name in names]
    lstat = os.lstat
    infos: Infos = []
    append = infos.append
    for path in paths:
        try:
            append(lstat(path, dir_fd=dir_fd))
        except OSError:  # vanished between readdir and lstat
            append(None)
    return infos


class StatColumns(NamedTuple):
    """A batch's stat columns, one value per entry (None where its lstat failed)."""

    sizes: List[Optional[int]]
    mtimes: List[Optional[float]]
    modes: List[Optional[int]]
    whole: bool = True  # every lstat was had: no None in the columns

    def head(self, count: int) -> "StatColumns":
        """The first ``count`` entries' columns."""
        return StatColumns(self.sizes[:count], self.mtimes[:count], self.modes[:count],
                           self.whole)

    def picked(self, keep: List[bool]) -> "StatColumns":
        """The columns of the entries ``keep`` says (one flag per entry)."""
        return StatColumns(list(compress(self.sizes, keep)), list(compress(self.mtimes, keep)),
                           list(compress(self.modes, keep)), self.whole)


def stat_columns(infos: Infos) -> StatColumns:
    """The sizes, mtimes and modes of a batch, read in C unless an entry vanished."""
    if None in infos:
        return StatColumns(_column(infos, _SIZE), _column(infos, _MTIME), _column(infos, _MODE),
                           whole=False)
    return StatColumns(list(map(_SIZE, infos)), list(map(_MTIME, infos)),
                       list(map(_MODE, infos)))


def type_letters(stats: StatColumns, readdir: str) -> str:
    """The type letter of each entry from its mode; readdir's (``readdir``) where it has none."""
    if not stats.whole:
        return "".join(letter if mode is None else _LETTER_BY_MODE[mode]
                       for mode, letter in zip(stats.modes, readdir))
    return "".join(map(_LETTER_BY_MODE.__getitem__, stats.modes))  # type: ignore[arg-type]


def shares_inodes(infos: Infos, letters: str, dev: int, whole: bool) -> bool:
    """Whether an entry but a directory may change through another path: another hard
    link to it, or another device (a mount), so that its directory hears nothing.

    ``whole``: no lstat failed (no None in ``infos``)."""
    files = infos if "d" not in letters else list(compress(infos, map(ne, letters, repeat("d"))))
    if not whole:
        files = [info for info in files if info is not None]
    return bool(files) and (max(map(_NLINK, files)) > 1
                            or list(map(_DEV, files)).count(dev) != len(files))


def _column(infos: Infos, read: Callable[[os.stat_result], object]) -> list:
    return [None if info is None else read(info) for info in infos]
