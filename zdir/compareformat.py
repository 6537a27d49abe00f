"""``--compare`` rendered: each name's status across the sources, as a text line or a JSON shape."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Sequence

from .output import PLAIN, Style, show_name

if TYPE_CHECKING:
    from .compare import Comparison


def compare_status(comparison: Comparison) -> str:
    """``same``, ``differs (size, mtime)``, ``only on a, c`` or ``only on a, c; differs (size)``."""
    differs = f"differs ({', '.join(comparison.differs)})" if comparison.differs else ""
    if comparison.status != "only":
        return differs or "same"
    from .compare import placement  # folded ranges beyond a handful of sources

    where = placement(comparison)
    return f"{where}; {differs}" if differs else where


def compare_dict(comparison: Comparison) -> dict:
    """The JSON shape of one compared name (see docs/output.md)."""
    return {
        "name": comparison.name,
        "status": comparison.status,
        "differs": list(comparison.differs),
        "missing": list(comparison.missing),
        "unknown": list(comparison.unknown),
        "sources": {
            source: {"type": e.type, "size": e.size, "mtime": e.mtime, "mode": e.mode}
            for source, e in comparison.copies.items()
        },
    }


def write_compare(comparisons: Sequence[Comparison], out: IO[str], style: Style = PLAIN) -> None:
    """One line per name: its status, padded to one width, then the name (last, as in ``ls -l``)."""
    rows = [(compare_status(c), show_name(next(iter(c.copies.values())), style))
            for c in comparisons]
    width = max((len(status) for status, _ in rows), default=0)
    out.writelines(f"{status:<{width}}  {name}\n" for status, name in rows)
