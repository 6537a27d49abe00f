"""The ``ls -l`` format: mode, size, mtime, source and name in aligned columns.

Column batches are turned into text once per distinct value: on a large listing
this is most of what ``zdir -l`` costs (see ``_write_long_columns``).
"""

from __future__ import annotations

import operator
import stat as stat_module
import time
from itertools import chain, repeat
from typing import IO, Any, Callable, Dict, Iterable, List, Optional

from .entries import Entries
from .output import PLAIN, Style, long_name, name_texts
from .protocol import ENTRY_TYPES

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HALF_YEAR = 31556952 // 2  # GNU ls: older files show the year, not the time of day
# A file up to an hour "in the future" still counts as recent: the servers' clocks are not ours.
_CLOCK_SKEW = 3600
TIME_STYLES = ("locale", "iso", "long-iso", "full-iso")  # GNU's names; locale is ls in the C locale
_SIZE_SUFFIXES = "KMGTPEZYRQ"
_TYPE_CHARS = {"file": "-", "dir": "d", "symlink": "l", "other": "?"}


def mode_string(entry_type: str, mode: Optional[int]) -> str:
    """``-rw-r--r--`` as ``ls -l`` shows it (``?`` where the mode is unknown)."""
    if mode is None:
        return _TYPE_CHARS.get(entry_type, "?") + "?????????"
    return stat_module.filemode(mode)


def format_time(mtime: Optional[float], now: float, style: str = "locale") -> str:
    """A modification time as ``ls -l --time-style=STYLE`` shows it, in local time.

    locale (ls in the C locale) and iso show the time of day for recent files and
    the year for old or future ones. full-iso shows microseconds padded to GNU's
    nine digits: the wire carries mtime as a float, exact to the microsecond.
    """
    if mtime is None:
        return "?"
    micros = round(mtime * 1_000_000)
    return _moment_text(micros, now - _HALF_YEAR < mtime < now + _CLOCK_SKEW, style)


def _moment_text(micros: int, recent: bool, style: str) -> str:
    """format_time's text from what it depends on: the microsecond, and whether it is recent."""
    seconds, fraction = divmod(micros, 1_000_000)
    try:
        moment = time.localtime(seconds)
    except (OverflowError, OSError, ValueError):  # a remote clock far off any calendar
        return "?"
    if style == "full-iso":
        return time.strftime(f"%Y-%m-%d %H:%M:%S.{fraction:06d}000 %z", moment)
    if style == "long-iso":
        return time.strftime("%Y-%m-%d %H:%M", moment)
    if style == "iso":
        return time.strftime("%m-%d %H:%M" if recent else "%Y-%m-%d ", moment)
    month = _MONTHS[moment.tm_mon - 1]
    if recent:
        return f"{month} {moment.tm_mday:2d} {moment.tm_hour:02d}:{moment.tm_min:02d}"
    return f"{month} {moment.tm_mday:2d}  {moment.tm_year:4d}"


def human_size(size: Optional[int]) -> str:
    """A size as ``ls -lh`` shows it: powers of 1024, rounded up, one decimal below 10.

    0, 1023, 1.0K, 1.5K, 10K, 1.0M (for 1048575 too, as GNU rounds up).
    """
    if size is None:
        return "?"
    if size < 1024:
        return str(size)
    power, exponent = 1024, 0
    while size >= power * 1024 and exponent < len(_SIZE_SUFFIXES) - 1:
        power *= 1024
        exponent += 1
    if size < 10 * power:
        tenths = -(-size * 10 // power)  # ceiling, in integers: exact at any size
        if tenths < 100:
            return f"{tenths // 10}.{tenths % 10}{_SIZE_SUFFIXES[exponent]}"
    whole = -(-size // power)
    if whole == 1024 and exponent < len(_SIZE_SUFFIXES) - 1:
        return f"1.0{_SIZE_SUFFIXES[exponent + 1]}"
    return f"{whole}{_SIZE_SUFFIXES[exponent]}"


def write_long(entries: Iterable, out: IO[str], style: Style = PLAIN) -> None:
    """mode, size, mtime, source, name: columns aligned like ``ls -l``.

    A symlink whose entry carries its target (``target``, present only when the
    server sent it: targets inside the root) reads ``name -> target``, as in ``ls -l``.
    """
    now = time.time()
    size_text: Callable[[Optional[int]], str] = human_size if style.human else _bytes
    if getattr(entries, "ordered", False):  # streamed: columns as wide as seen so far
        widths = [0, 0, 0]
        for batch in entries.batches():  # type: ignore[attr-defined]
            _write_long_columns([batch], out, style, size_text, now, widths)
        return
    if hasattr(entries, "batches"):  # columns (zdir.entries): a batch at a time, no row tuples
        _write_long_columns(list(entries.batches()), out, style, size_text, now)  # type: ignore
        return
    rows = [
        (
            mode_string(e.type, e.mode),
            size_text(e.size),
            format_time(e.mtime, now, style.time_style),
            e.source,
            long_name(e, style),
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


def _write_long_columns(batches: List[Entries], out: IO[str], style: Style,
                        size_text: Callable[[Optional[int]], str], now: float,
                        widths: Optional[List[int]] = None) -> None:
    """write_long's text for column batches, without formatting anything twice.

    The per-entry path cost about 7 us an entry (2 s for 200,000, more than the
    servers' listing). Here each column is turned into text once per distinct
    value (modes, sizes, sources and time texts repeat: files written together
    share an mtime second) and the lines are joined a batch at a time, as
    ``jsonformat._json_objects`` does. tests/unit/test_entries.py holds it to the per-entry text.
    """
    modes: Dict[Any, str] = {}
    sizes: Dict[Any, str] = {}
    times: Dict[Any, str] = {}
    columns = []
    for batch in batches:
        count = len(batch.names)
        if not count:
            continue
        columns.append((_mode_texts(batch, modes), _texts(batch.sizes, size_text, sizes, count),
                        _time_texts(batch.mtimes, times, now, style.time_style, count),
                        batch.sources, name_texts(batch, style)))
    if not columns:
        return
    padded = []  # per column: text -> the text padded to the column's width, and a space
    for index in (1, 2, 3):
        texts = dict.fromkeys(chain.from_iterable(c[index] for c in columns))
        width = max(map(len, texts))
        if widths is not None:  # streamed batches: never narrower than the ones before
            width = widths[index - 1] = max(width, widths[index - 1])
        padded.append({t: (t.rjust(width) if index == 1 else t.ljust(width)) + " "
                       for t in texts})
    for mode_col, size_col, time_col, source_col, name_col in columns:
        count = len(name_col)
        parts: List[Any] = [None] * (6 * count)
        parts[0::6] = mode_col
        for index, column in enumerate((size_col, time_col, source_col)):
            parts[index + 1::6] = map(padded[index].__getitem__, column)
        parts[4::6] = name_col
        parts[5::6] = ["\n"] * count
        out.write("".join(parts))


def _mode_texts(batch: Entries, cache: Dict[Any, str]) -> List[str]:
    """``-rw-r--r-- `` per entry, each distinct (type, mode) formatted once."""
    if batch.modes is not None and all(type(m) is int for m in dict.fromkeys(batch.modes)):
        keys: List[Any] = batch.modes  # a known mode says the type itself
    else:
        keys = list(zip(batch.types, batch.modes or [None] * len(batch.names)))
    for key in dict.fromkeys(keys):
        if key not in cache:
            letter, mode = key if isinstance(key, tuple) else ("", key)
            cache[key] = mode_string(ENTRY_TYPES.get(letter, "other"), mode) + " "
    return list(map(cache.__getitem__, keys))


def _texts(column: Optional[list], text: Callable[[Any], str], cache: Dict[Any, str],
           count: int) -> List[str]:
    """``text(value)`` per entry, once per distinct value when all values are ints or None.

    (Only then: 1, 1.0 and True are one dict key but not one text.)
    """
    if column is None:
        return [text(None)] * count
    if not set(map(type, column)) <= {int, type(None)}:
        return list(map(text, column))
    for value in dict.fromkeys(column):
        if value not in cache:
            cache[value] = text(value)
    return list(map(cache.__getitem__, column))


def _time_texts(column: Optional[list], cache: Dict[Any, str], now: float, style: str,
                count: int) -> List[str]:
    """format_time per entry, computed once per distinct shown moment.

    The text depends only on the second (the microsecond for full-iso) and on
    whether the time is recent, so distinct mtimes in one second share it.
    """
    if column is None:
        return ["?"] * count
    lo, hi, full = now - _HALF_YEAR, now + _CLOCK_SKEW, style == "full-iso"
    if set(map(type, column)) <= {int, float}:
        # Distinct values, then C-level maps over them: with every mtime distinct, a
        # Python loop per value cost more than all the rest of the long format.
        values = list(dict.fromkeys(column))
        micros = list(map(round, map(operator.mul, values, repeat(1_000_000))))
        if full:
            keys: List[Any] = micros
            moments = {m: (m, False) for m in dict.fromkeys(micros)}
        else:
            seconds = map(operator.floordiv, micros, repeat(1_000_000))
            recent = map(operator.and_, map(lo.__lt__, values), map(hi.__gt__, values))
            keys = list(zip(seconds, recent))
            moments = {k: (k[0] * 1_000_000, k[1]) for k in dict.fromkeys(keys)}
        for key, (moment, is_recent) in moments.items():
            text = cache.get((full, key))
            if text is None:
                text = cache[full, key] = _moment_text(moment, is_recent, style)
            moments[key] = text  # type: ignore[assignment]
        shown = dict(zip(values, map(moments.__getitem__, keys)))
        return list(map(shown.__getitem__, column))
    texts: Dict[Any, str] = {}
    for value in dict.fromkeys(column):
        if value is None or type(value) not in (int, float):
            texts[value] = format_time(value, now, style)
            continue
        micros = round(value * 1_000_000)
        key = micros if full else (micros // 1_000_000, lo < value < hi)
        text = cache.get((full, key))
        if text is None:
            text = cache[full, key] = format_time(value, now, style)
        texts[value] = text
    return list(map(texts.__getitem__, column))


def _bytes(size: Optional[int]) -> str:
    return "?" if size is None else str(size)
