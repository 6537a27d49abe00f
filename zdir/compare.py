"""Group a merged listing by name: on which sources each name is, and whether its copies agree.

Copies agree when they have the same type and, unless they are directories, the
same size and mtimes no further apart than a window (one second by default: many
filesystems, and copies made across them, keep whole seconds only). A directory's
size and mtime describe its filesystem and its last change of entries, not its
contents; with -R the entries inside are compared one by one instead.

Where a name is, is said with the sources' names; beyond a handful of sources
they are folded into ranges (zdir.nodeset), and the shorter of the sources
that have it and those that lack it is named.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Iterable, List, NamedTuple, Sequence, Tuple

from .nodeset import HANDFUL, fold


class Comparison(NamedTuple):
    """One name across the sources compared."""

    name: str
    copies: Dict[str, Any]  # source name -> Entry, in the sources' order
    missing: Tuple[str, ...]  # sources that answered in full and do not have the name
    unknown: Tuple[str, ...]  # sources that failed or were cut short and do not show it
    differs: Tuple[str, ...]  # of "type", "size", "mtime": where the copies disagree

    @property
    def status(self) -> str:
        """"only" (not on every source compared), else "differs" or "same"."""
        if self.missing or self.unknown:
            return "only"
        return "differs" if self.differs else "same"


def compare(entries: Iterable[Any], sources: Sequence[Any], window: float) -> List[Comparison]:
    """One Comparison per name, in code-point order.

    ``sources`` (with ``.name`` and ``.failed``) are those compared, in order. A name
    absent from a source that failed or was cut short is unknown there, not missing:
    that source could not tell.
    """
    rank = {source.name: index for index, source in enumerate(sources)}
    groups: Dict[str, Dict[str, Any]] = {}
    for entry in entries:
        groups.setdefault(entry.name, {})[entry.source] = entry
    result = []
    for name in sorted(groups):
        found = groups[name]
        order = sorted(found, key=lambda source: rank.get(source, len(rank)))
        copies = {source: found[source] for source in order}
        missing = tuple(s.name for s in sources if s.name not in found and not s.failed)
        unknown = tuple(s.name for s in sources if s.name not in found and s.failed)
        result.append(Comparison(name, copies, missing, unknown,
                                 differing(list(copies.values()), window)))
    return result


def differing(copies: Sequence[Any], window: float) -> Tuple[str, ...]:
    """The fields on which the copies disagree; only "type" when their types differ."""
    first = copies[0]
    if any(copy.type != first.type for copy in copies):
        return ("type",)
    if first.type == "dir":
        return ()
    fields = []
    if any(copy.size != first.size for copy in copies):
        fields.append("size")
    mtimes = [copy.mtime for copy in copies]
    if None in mtimes:
        if any(mtime is not None for mtime in mtimes):
            fields.append("mtime")
    elif max(mtimes) - min(mtimes) > window:
        fields.append("mtime")
    return tuple(fields)


def placement(comparison: Comparison) -> str:
    """Where a name that is not on every source is: ``only on a, c``, or folded for fleets.

    Up to a handful of sources: every source that has it. Beyond: ``only on
    node[0001-0010]`` or ``missing on node[0011-1000]``, whichever is shorter;
    the second form also names the sources that failed (``unknown on node0042``),
    since a reader would otherwise take the name to be there.
    """
    present = tuple(comparison.copies)
    if len(present) + len(comparison.missing) + len(comparison.unknown) <= HANDFUL:
        return f"only on {', '.join(present)}"
    return _folded_placement(present, comparison.missing, comparison.unknown)


@lru_cache(maxsize=256)  # a fleet's names fall into a few patterns: fold each pattern once
def _folded_placement(present: Tuple[str, ...], missing: Tuple[str, ...],
                      unknown: Tuple[str, ...]) -> str:
    only = f"only on {fold(present)}"
    absent = [f"missing on {fold(missing)}"] if missing else []
    if unknown:
        absent.append(f"unknown on {fold(unknown)}")
    lacking = "; ".join(absent)
    return lacking if len(lacking) < len(only) else only
