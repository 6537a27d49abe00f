"""Rendering listings for people (plain, long) and for programs (JSON, NDJSON)."""

from __future__ import annotations

import stat as stat_module
import time
from typing import IO, Iterable, List, Optional, Sequence

from .protocol import SourceStatus

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIX_MONTHS = 182.5 * 24 * 3600  # GNU ls shows the year instead of the time beyond this
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
            "\r": "\\r", "\\": "\\\\"}
_TYPE_CHARS = {"file": "-", "dir": "d", "symlink": "l", "other": "?"}


def escape_name(name: str) -> str:
    """A name safe for a terminal: one entry, one line, like GNU ``ls -b``.

    C escapes for control characters, octal for undecodable bytes (surrogate
    escapes) and other unprintable characters, a doubled backslash for a backslash.
    """
    if name.isprintable() and "\\" not in name:
        return name
    out = []
    for char in name:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif "\udc80" <= char <= "\udcff":
            out.append(f"\\{ord(char) - 0xDC00:03o}")
        elif not char.isprintable():
            data = char.encode("utf-8", "surrogatepass")
            out.append("".join(f"\\{byte:03o}" for byte in data))
        else:
            out.append(char)
    return "".join(out)


def mode_string(entry_type: str, mode: Optional[int]) -> str:
    """``-rw-r--r--`` as ``ls -l`` shows it (``?`` where the mode is unknown)."""
    if mode is None:
        return _TYPE_CHARS.get(entry_type, "?") + "?????????"
    return stat_module.filemode(mode)


def format_time(mtime: Optional[float], now: float) -> str:
    """``ls -l``'s default: month, day and time, or the year for old or future files."""
    if mtime is None:
        return "?"
    moment = time.localtime(mtime)
    month = _MONTHS[moment.tm_mon - 1]
    if now - _SIX_MONTHS < mtime < now + 3600:
        return f"{month} {moment.tm_mday:2d} {moment.tm_hour:02d}:{moment.tm_min:02d}"
    return f"{month} {moment.tm_mday:2d}  {moment.tm_year:4d}"


def write_plain(entries: Iterable, out: IO[str]) -> None:
    """One escaped name per line."""
    out.writelines(escape_name(entry.name) + "\n" for entry in entries)


def write_long(entries: Sequence, out: IO[str]) -> None:
    """mode, size, mtime, source, name: columns aligned like ``ls -l``."""
    now = time.time()
    rows = [
        (
            mode_string(e.type, e.mode),
            "?" if e.size is None else str(e.size),
            format_time(e.mtime, now),
            e.source,
            escape_name(e.name),
        )
        for e in entries
    ]
    if not rows:
        return
    size_width = max(len(r[1]) for r in rows)
    time_width = max(len(r[2]) for r in rows)
    source_width = max(len(r[3]) for r in rows)
    out.writelines(
        f"{m} {s:>{size_width}} {t:<{time_width}} {src:<{source_width}} {n}\n"
        for m, s, t, src, n in rows
    )


def entry_dict(entry) -> dict:
    """The JSON shape of one entry (names keep undecodable bytes as \\udcXX escapes)."""
    return {
        "name": entry.name,
        "type": entry.type,
        "size": entry.size,
        "mtime": entry.mtime,
        "mode": entry.mode,
        "source": entry.source,
    }


def source_dict(source: SourceStatus) -> dict:
    """The JSON shape of one source's status."""
    return {k: v for k, v in source._asdict().items() if v is not None or k in ("endpoint", "error")}


def write_json(entries: Iterable, sources: Sequence[SourceStatus], out: IO[str]) -> None:
    """One JSON document: ``{"entries": [...], "sources": [...]}``."""
    import json

    document = {
        "entries": [entry_dict(e) for e in entries],
        "sources": [source_dict(s) for s in sources],
    }
    json.dump(document, out)
    out.write("\n")


def source_problems(sources: Sequence[SourceStatus]) -> List[str]:
    """For stderr: one line per source that failed, was cut short or refused the path.

    A source that simply lacks the path (not_found) is not worth a line while
    another source lists it.
    """
    lines = []
    for s in sources:
        if not s.error or (not s.failed and s.code == "not_found"):
            continue
        what = s.error["message"]
        where = f" ({s.endpoint})" if s.endpoint and s.endpoint not in what else ""
        verdict = "failed" if s.failed else "refused"
        lines.append(f"source {s.name}{where} {verdict}: {s.code}: {what}")
    return lines
