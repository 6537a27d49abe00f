"""Rendering names for people: escaping, colours and ``-F`` shared by every format, and plain.

The other formats build on these pieces: longformat.py (``-l``), jsonformat.py
(``--json``, ``--ndjson``) and compareformat.py (``--compare``); problems.py
says on stderr what went wrong with which source.
"""

from __future__ import annotations

import stat as stat_module
from itertools import chain
from operator import ne
from types import SimpleNamespace
from typing import IO, Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence

from .entries import Entries
from .protocol import ENTRY_TYPES, SourceStatus

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
            "\r": "\\r", "\\": "\\\\"}
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
    """``write_plain`` for entries in the listing order: equal names come together.

    Each batch's names are escaped and decorated as one column (``name_texts``);
    a batch in which every name differs from the one before it, the usual one, is
    written with one join. The last name is held until the next one is seen, as
    the next batch may begin with more copies of it.
    """
    rank = {s.name: i for i, s in enumerate(sources)}
    held: Optional[str] = None  # the last name's text, written once its copies are all seen
    held_name: Optional[str] = None
    found: Dict[str, None] = {}  # its sources; a dict: a thousand sources of one name stay linear

    def held_line() -> str:
        assert held is not None
        if where and len(found) > 1:
            names = sorted(found, key=lambda name: rank.get(name, len(rank)))
            return f"{held}  ({_sources_text(names)})\n"
        return held + "\n"

    for batch in entries.batches():
        names, batch_sources = batch.names, batch.sources
        if not names:
            continue
        texts = name_texts(batch, style, targets=False)
        starts = [names[0] != held_name, *map(ne, names[1:], names)]  # a new name here
        lines = []
        if all(starts):
            if held is not None:
                lines.append(held_line())
            if len(texts) > 1:
                lines.append("\n".join(texts[:-1]) + "\n")
            held, held_name, found = texts[-1], names[-1], {batch_sources[-1]: None}
        else:
            for index, starting in enumerate(starts):
                if not starting:
                    found[batch_sources[index]] = None
                    continue
                if held is not None:
                    lines.append(held_line())
                held, held_name = texts[index], names[index]
                found = {batch_sources[index]: None}
        out.write("".join(lines))
    if held is not None:
        out.write(held_line())


def _sources_text(names: List[str]) -> str:
    """``server_a, server_b``; beyond a handful, folded: ``node[0001-0498,0500-1000]``."""
    from .nodeset import HANDFUL, fold

    return fold(names) if len(names) > HANDFUL else ", ".join(names)


def _write_names(entries: Iterable, out: IO[str], style: Style) -> None:
    """One escaped name per line, as the entries come (a batch at a time when they are columns)."""
    if hasattr(entries, "batches"):
        for batch in entries.batches():  # a column of names at a time (zdir.entries)
            names = name_texts(batch, style, targets=False)
            if names:
                out.write("\n".join(names) + "\n")
        return
    out.writelines(show_name(entry, style) + "\n" for entry in entries)


def name_texts(batch: Entries, style: Style, targets: bool = True) -> List[str]:
    """show_name per entry (``long_name`` for known symlink targets when ``targets``):
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
                names[index] = long_name(batch[index], style)
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


def long_name(entry: Any, style: Style) -> str:
    """The name, and `` -> target`` for a symlink whose target is known (no ``@`` then, as ls)."""
    target = getattr(entry, "target", None)
    if target is None:
        return show_name(entry, style)
    return f"{show_name(entry, style._replace(classify=False))} -> {escape_name(target)}"
