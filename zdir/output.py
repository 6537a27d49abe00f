"""Rendering listings for people (plain, long) and for programs (JSON, NDJSON)."""

from __future__ import annotations

import operator
import stat as stat_module
import time
from itertools import chain, repeat
from types import SimpleNamespace
from typing import (IO, TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, NamedTuple,
                    Optional, Sequence)

from .entries import Entries
from .protocol import ENTRY_TYPES, SourceStatus

if TYPE_CHECKING:
    from .compare import Comparison

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HALF_YEAR = 31556952 // 2  # GNU ls: older files show the year, not the time of day
# A file up to an hour "in the future" still counts as recent: the servers' clocks are not ours.
_CLOCK_SKEW = 3600
TIME_STYLES = ("locale", "iso", "long-iso", "full-iso")  # GNU's names; locale is ls in the C locale
_SIZE_SUFFIXES = "KMGTPEZYRQ"
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
            "\r": "\\r", "\\": "\\\\"}
_TYPE_CHARS = {"file": "-", "dir": "d", "symlink": "l", "other": "?"}
# Kinds are LS_COLORS keys; the colours are GNU dircolors' defaults.
DEFAULT_COLORS = {"di": "01;34", "ln": "01;36", "ex": "01;32", "pi": "40;33", "so": "01;35",
                  "bd": "40;33;01", "cd": "40;33;01"}
_KINDS = frozenset(("fi", *DEFAULT_COLORS))
_INDICATORS = {"di": "/", "ln": "@", "pi": "|", "so": "=", "ex": "*"}  # ls -F
_SPECIAL_KINDS = {stat_module.S_IFIFO: "pi", stat_module.S_IFSOCK: "so",
                  stat_module.S_IFBLK: "bd", stat_module.S_IFCHR: "cd"}


class Style(NamedTuple):
    """How a line looks: the ``ls`` flags -h, --time-style, -F and --color."""

    human: bool = False
    time_style: str = "locale"
    classify: bool = False
    colors: Optional[Mapping[str, str]] = None  # kind -> SGR code; None: no colour


PLAIN = Style()


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


def kind(entry_type: str, mode: Optional[int]) -> str:
    """The entry's LS_COLORS key: di, ln, ex, fi, pi, so, bd, cd; "" when not known."""
    if entry_type == "dir":
        return "di"
    if entry_type == "symlink":
        return "ln"
    if entry_type == "file":
        return "ex" if mode is not None and mode & 0o111 else "fi"
    return "" if mode is None else _SPECIAL_KINDS.get(stat_module.S_IFMT(mode), "")


def ls_colors(spec: Optional[str]) -> dict:
    """Colours by kind: GNU's defaults, overridden by the kind keys of an LS_COLORS value.

    Extension patterns (``*.tar=...``) are not supported: only kinds travel.
    """
    colors = dict(DEFAULT_COLORS)
    for item in (spec or "").split(":"):
        key, sep, value = item.partition("=")
        # "" turns a colour off; values that are not SGR codes (ln=target) are skipped
        if sep and key in _KINDS and (not value or value.replace(";", "").isdigit()):
            colors[key] = value
    return colors


def show_name(entry: Any, style: Style) -> str:
    """The escaped name, coloured and followed by its ``-F`` indicator when the style asks."""
    name = escape_name(entry.name)
    if style.colors is None and not style.classify:
        return name
    what = kind(entry.type, entry.mode)
    color = style.colors.get(what) if style.colors else None
    if color and color not in ("0", "00"):
        name = f"\x1b[{color}m{name}\x1b[0m"
    return name + _INDICATORS.get(what, "") if style.classify else name


def write_plain(entries: Iterable, out: IO[str], style: Style = PLAIN,
                sources: Sequence[SourceStatus] = (), where: bool = True) -> None:
    """One escaped name per line; a name that several sources have, once, saying where.

    ``README.txt  (server_a, server_b)``: the sources that have it, in the order
    of ``sources`` (the reply's), folded into ranges beyond a handful
    (``(node[0001-1000])``), as ``--compare`` does. A name only one source has is
    printed bare. ``where=False`` (``-1``) prints every name bare, once. When
    ``sources`` shows at most one source with entries, the names are written as
    they come (a listing streams); otherwise the whole listing is read first.
    """
    if getattr(entries, "ordered", False) and (len(sources) > 1 or not where):
        _write_grouped(entries, out, style, sources, where)
        return
    if sources and sum(1 for s in sources if s.entries) <= 1:
        _write_names(entries, out, style)
        return
    if hasattr(entries, "batches"):  # columns: a name only one source has needs no grouping
        batches = list(entries.batches())  # type: ignore[attr-defined]
        names = list(chain.from_iterable(b.names for b in batches))
        if len(set(names)) == len(names):
            _write_names(SimpleNamespace(batches=lambda: iter(batches)), out, style)
            return
        del names
        rows: Iterable[Any] = ((b, i, name, source) for b in batches
                               for i, (name, source) in enumerate(zip(b.names, b.sources)))
    else:
        rows = ((None, e, e.name, e.source) for e in entries)
    # name -> [(batch, index) or (None, entry) of its first row, {source: None, ...}]: a
    # dict, not a list, as a thousand sources of one name would make ``in`` quadratic
    copies: Dict[str, List[Any]] = {}
    for batch, row, name, source in rows:
        seen = copies.get(name)
        if seen is None:
            copies[name] = [(batch, row), {source: None}]
        else:
            seen[1][source] = None
    rank = {s.name: i for i, s in enumerate(sources)}
    lines = []
    for (batch, first), found_sources in copies.values():
        found = list(found_sources)
        line = show_name(first if batch is None else batch[first], style)
        if where and len(found) > 1:
            found.sort(key=lambda name: rank.get(name, len(rank)))
            line += f"  ({_sources_text(found)})"
        lines.append(line + "\n")
    out.writelines(lines)


def _write_grouped(entries: Any, out: IO[str], style: Style,
                   sources: Sequence[SourceStatus], where: bool) -> None:
    """``write_plain`` for entries in the listing order: equal names come together, so
    each name is written as soon as the next name is seen, a batch at a time."""
    rank = {s.name: i for i, s in enumerate(sources)}
    first: Any = None
    found: Dict[str, None] = {}  # a dict: a thousand sources of one name stay linear

    def line() -> str:
        text = show_name(first, style)
        if where and len(found) > 1:
            names = sorted(found, key=lambda name: rank.get(name, len(rank)))
            text += f"  ({_sources_text(names)})"
        return text + "\n"

    for batch in entries.batches():
        lines = []
        for entry in batch:
            if first is not None and entry.name == first.name:
                found[entry.source] = None
                continue
            if first is not None:
                lines.append(line())
            first, found = entry, {entry.source: None}
        out.writelines(lines)
    if first is not None:
        out.write(line())


def _sources_text(names: List[str]) -> str:
    """``server_a, server_b``; beyond a handful, folded: ``node[0001-0498,0500-1000]``."""
    from .nodeset import HANDFUL, fold

    return fold(names) if len(names) > HANDFUL else ", ".join(names)


def _write_names(entries: Iterable, out: IO[str], style: Style) -> None:
    """One escaped name per line, as the entries come (a batch at a time when they are columns)."""
    if hasattr(entries, "batches"):
        for batch in entries.batches():  # a column of names at a time (zdir.entries)
            names = _name_texts(batch, style, targets=False)
            if names:
                out.write("\n".join(names) + "\n")
        return
    out.writelines(show_name(entry, style) + "\n" for entry in entries)


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
            _long_name(e, style),
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
    ``_json_objects`` does. tests/unit/test_entries.py holds it to the per-entry text.
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
                        batch.sources, _name_texts(batch, style)))
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


def _name_texts(batch: Entries, style: Style, targets: bool = True) -> List[str]:
    """show_name per entry (``_long_name`` for known symlink targets when ``targets``):
    escaped names (checked once per batch), coloured and classified by (type, mode)
    once per distinct pair."""
    names = batch.names
    joined = "".join(names)
    if not joined.isprintable() or "\\" in joined:
        names = list(map(escape_name, names))
    if style.colors is not None or style.classify:
        names = _decorated(batch, names, style)
    known = getattr(batch, "targets", None) if targets else None
    if known is not None and any(t is not None for t in known):
        names = list(names)
        for index, target in enumerate(known):
            if target is not None:
                names[index] = _long_name(batch[index], style)
    return names


def _decorated(batch: Entries, names: List[str], style: Style) -> List[str]:
    """Names coloured and classified as show_name does, once per distinct (type, mode)."""
    modes = batch.modes if batch.modes is not None else [None] * len(names)
    keys = list(zip(batch.types, modes))
    decorations = {}
    for letter, mode in dict.fromkeys(keys):
        what = kind(ENTRY_TYPES.get(letter, "other"), mode)
        color = style.colors.get(what) if style.colors else None
        coloured = bool(color) and color not in ("0", "00")
        pre, post = (f"\x1b[{color}m", "\x1b[0m") if coloured else ("", "")
        decorations[letter, mode] = (pre, post + _INDICATORS.get(what, "")
                                     if style.classify else post)
    return [pre + name + post
            for name, (pre, post) in zip(names, map(decorations.__getitem__, keys))]


def _long_name(entry: Any, style: Style) -> str:
    """The name, and `` -> target`` for a symlink whose target is known (no ``@`` then, as ls)."""
    target = getattr(entry, "target", None)
    if target is None:
        return show_name(entry, style)
    return f"{show_name(entry, style._replace(classify=False))} -> {escape_name(target)}"


def _bytes(size: Optional[int]) -> str:
    return "?" if size is None else str(size)


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
    kept = ("endpoint", "error")
    paging = ("next", "last")  # a paged listing's positions: the wire's business, not output's
    return {k: v for k, v in source._asdict().items()
            if (v is not None or k in kept) and k not in paging}


def write_json(entries: Iterable, sources: Sequence[SourceStatus], out: IO[str], *,
               key: str = "entries", shape: Callable[[Any], dict] = entry_dict) -> None:
    """One JSON document: ``{"entries": [...], "sources": [...]}`` (``"names"`` for --compare)."""
    import json

    sources_json = [source_dict(s) for s in sources]
    if shape is entry_dict and hasattr(entries, "batches"):
        # The same text as json.dump, built a column at a time: no dict per entry.
        out.write(f'{{"{key}": [')
        separator = ""
        for batch in entries.batches():
            if batch:
                out.write(separator + _json_objects(batch, ", "))
                separator = ", "
        out.write(f'], "sources": {json.dumps(sources_json)}}}\n')
        return
    json.dump({key: [shape(e) for e in entries], "sources": sources_json}, out)
    out.write("\n")


def write_ndjson(entries: Iterable, sources: Sequence[SourceStatus], out: IO[str], *,
                 shape: Callable[[Any], dict] = entry_dict) -> None:
    """One JSON object per line, written as entries come, then ``{"sources": [...]}``.

    The sources line comes last so that a reader who never sees it knows the
    output was cut short.
    """
    import json

    encode = json.JSONEncoder().encode  # json.dumps' defaults, without its per-call set-up
    if shape is entry_dict and hasattr(entries, "batches"):
        for batch in entries.batches():
            if batch:
                out.write(_json_objects(batch, "\n") + "\n")
    else:
        out.writelines(encode(shape(e)) + "\n" for e in entries)
    out.write(encode({"sources": [source_dict(s) for s in sources]}) + "\n")


_JSON_PLAIN = bytes(set(range(0x20, 0x7F)) - set(b'"\\'))  # what json.dumps leaves as it is
_JSON_HEAD = '{"name": "'
_JSON_TYPES = {letter: f'", "type": "{name}", "size": ' for letter, name in ENTRY_TYPES.items()}


def _json_objects(batch: Entries, separator: str) -> str:
    """``json.dumps(entry_dict(e))`` for every entry of a batch, joined by ``separator``.

    Built column by column with C-level maps and one join: this is most of what
    ``zdir --json`` costs on a large listing, so it avoids any work per entry in
    Python. tests/unit/test_entries.py holds it to json.dumps' exact text.
    """
    from json.encoder import encode_basestring_ascii

    count = len(batch.names)
    names = batch.names
    joined = "".join(names)
    if not joined.isascii() or joined.encode("ascii").translate(None, _JSON_PLAIN):
        names = [encode_basestring_ascii(name)[1:-1] for name in names]  # as json.dumps does
    tails = {source: f', "source": {encode_basestring_ascii(source)}}}{separator}{_JSON_HEAD}'
             for source in set(batch.sources)}
    parts: List[Any] = [None] * (8 * count)
    parts[0::8] = names
    parts[1::8] = map(_JSON_TYPES.__getitem__, batch.types)
    parts[2::8] = _json_numbers(batch.sizes, count)
    parts[3::8] = [', "mtime": '] * count
    parts[4::8] = _json_numbers(batch.mtimes, count)
    parts[5::8] = [', "mode": '] * count
    parts[6::8] = _json_numbers(batch.modes, count)
    parts[7::8] = map(tails.__getitem__, batch.sources)
    parts[-1] = parts[-1][: -len(separator + _JSON_HEAD)]
    return _JSON_HEAD + "".join(parts)


def _json_numbers(column: Optional[list], count: int) -> List[str]:
    """A stat column as JSON texts; when values repeat (modes, often mtimes), each once."""
    if column is None:
        return ["null"] * count
    kinds = set(map(type, column))
    sample = column[:256]
    if len(set(sample)) * 2 > len(sample) or len(kinds) > 1:  # 1, 1.0 and True: one dict key
        return _json_texts(column, kinds)
    texts = dict.fromkeys(column)
    if 0 in texts and float in kinds:  # 0.0 and -0.0: one dict key, two texts
        return _json_texts(column, kinds)
    texts.update(zip(texts, _json_texts(texts, kinds)))
    return list(map(texts.__getitem__, column))


def _json_texts(values: Iterable[Any], kinds: set) -> List[str]:
    """json.dumps of each value; repr, which is the same text, for plain ints and floats."""
    import json

    if kinds <= {int}:
        return list(map(int.__repr__, values))
    if kinds <= {float}:
        texts = list(map(float.__repr__, values))
        if "n" not in "".join(texts):  # no nan or inf, which JSON spells NaN and Infinity
            return texts
    return list(map(json.dumps, values))


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


def source_problems(sources: Sequence[SourceStatus]) -> List[str]:
    """For stderr: what went wrong with which source, readable at any number of sources.

    Up to a handful of sources, one line per source that failed, was cut short
    or refused the path, with its message. Beyond, one line for the whole fleet:
    ``998 of 1000 sources answered; failed: node0042 (timeout), node0777
    (unreachable)``, the names folded into ranges per error code when more than
    a handful failed. Either way a source that simply lacks the path
    (not_found) is not worth a word while another source lists it. Works on
    the header's sources alone, so it never waits for the listing.
    """
    from .nodeset import HANDFUL

    if len(sources) > HANDFUL:
        return _fleet_problems(sources)
    lines = []
    for s in sources:
        if not s.error or (not s.failed and s.code == "not_found"):
            continue
        what = s.error["message"]
        where = f" ({s.endpoint})" if s.endpoint and s.endpoint not in what else ""
        verdict = "failed" if s.failed else "refused"
        lines.append(f"source {s.name}{where} {verdict}: {s.code}: {what}{_unheard(s)}")
    return lines


def _unheard(source: SourceStatus) -> str:
    """A failed relay hides the sources behind it: say how many there were last time."""
    if not source.failed or not source.behind or source.behind < 2:
        return ""
    return f" ({source.behind - 1} sources behind it unheard)"


def _fleet_problems(sources: Sequence[SourceStatus]) -> List[str]:
    """``N of M sources answered; failed: ...; refused: ...`` in one line; none if all is well."""
    from .nodeset import HANDFUL, fold

    failed = [s for s in sources if s.failed]
    refused = [s for s in sources if not s.failed and s.error and s.code != "not_found"]
    if not failed and not refused:
        return []
    # A failed relay counts once in ``sources``; the manifest says who stood behind it.
    unheard = sum(s.behind - 1 for s in failed if s.behind)
    clauses = [f"{len(sources) - len(failed)} of {len(sources) + unheard} sources answered"]
    for verdict, group in (("failed", failed), ("refused", refused)):
        if len(group) > HANDFUL:
            by_code: "dict[str, List[str]]" = {}  # codes in order of first appearance
            for s in group:
                by_code.setdefault(s.code or "truncated", []).append(s.name)
            named = [f"{fold(names)} ({code})" for code, names in by_code.items()]
        else:
            named = [f"{s.name} ({s.code or 'truncated'})" for s in group]
        if named:
            clauses.append(f"{verdict}: {', '.join(named)}")
    if unheard:
        clauses.append(f"{unheard} sources behind failed relays unheard")
    return ["; ".join(clauses)]
