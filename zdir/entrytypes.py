"""An entry's type letter from readdir or lstat, and the Windows stat that comes with a name."""

from __future__ import annotations

import os
import stat as stat_module
from typing import Optional

LETTERS = {stat_module.S_IFREG: "f", stat_module.S_IFDIR: "d", stat_module.S_IFLNK: "l"}
_FILE_ATTRIBUTE_REPARSE_POINT = 0x400


def windows_stat(entry: os.DirEntry) -> Optional[os.stat_result]:
    """Windows gives the stat fields with the name: keeping them costs no call."""
    try:
        return entry.stat(follow_symlinks=False)
    except OSError:
        return None


def is_junction(info: os.stat_result) -> bool:
    """A Windows junction (or other reparse point) that lstat reports as a directory."""
    return bool(getattr(info, "st_file_attributes", 0) & _FILE_ATTRIBUTE_REPARSE_POINT)


def letter_from_entry(entry: os.DirEntry) -> str:
    """The entry's type from readdir alone (no stat on most platforms); files first, as most are."""
    try:
        if entry.is_file(follow_symlinks=False):
            return "f"
        if entry.is_dir(follow_symlinks=False):
            return "d"
        if entry.is_symlink():
            return "l"
    except OSError:
        pass
    return "o"
