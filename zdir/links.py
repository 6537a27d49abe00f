"""Symlink targets a listing may show: read with os.readlink, kept if their text stays in the root.

``ls -l`` shows ``latest -> notes.txt``. A node may show the same, but a target
is text chosen by whoever made the link, and it must not tell a client anything
about what lies outside the root: not the root's own absolute path, not the
names above it. So a target is shown only when it is relative and, read from
the link's directory, never climbs above the root (``../x`` from the root
itself would). This judges the text alone, as a name does: where the target
leads once other links are followed is not revealed by it, and the lister
never follows it. Pure file-system code, importing nothing of ours.
"""

from __future__ import annotations

import ntpath
import os
from typing import Optional, Union

_ON_WINDOWS = os.name == "nt"


def read_target(name: str, directory: Union[int, str], depth: int) -> Optional[str]:
    """The target of the symlink ``name`` in ``directory``, as ``ls -l`` shows it, or None.

    ``directory`` is an open directory descriptor (read with ``dir_fd``, so a
    directory swapped for a link after it was opened cannot redirect the read)
    or a path; ``depth`` is how many directories below the root it is (0: the
    root itself). None when the entry is no longer a link, cannot be read, or
    its target would reveal anything outside the root (see ``confined_target``).
    """
    try:
        if isinstance(directory, int):
            target = os.readlink(name, dir_fd=directory)
        else:
            target = os.readlink(os.path.join(directory, name))
    except (OSError, NotImplementedError, ValueError):  # gone, not a link, no dir_fd here
        return None
    return confined_target(os.fsdecode(target), depth)


def confined_target(target: str, depth: int) -> Optional[str]:
    """``target`` if its text, read from a link ``depth`` directories below the root, stays in it.

    Absolute targets (``/etc``; on Windows also ``C:\\x`` and ``\\\\server\\share``) are
    refused: they would name the root's place in the file system. A relative target is
    walked component by component; one ``..`` too many climbs out of the root.
    """
    if not target or "\x00" in target or depth < 0:
        return None
    separators = "/\\" if _ON_WINDOWS else "/"
    if target[0] in separators or (_ON_WINDOWS and ntpath.splitdrive(target)[0]):
        return None
    text = target.replace("\\", "/") if _ON_WINDOWS else target
    level = depth
    for part in text.split("/"):
        if part == "..":
            level -= 1
            if level < 0:
                return None
        elif part not in ("", "."):
            level += 1
    return target
