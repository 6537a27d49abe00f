"""Listings for programs: one JSON document, or NDJSON (an object per line); see docs/output.md."""

from __future__ import annotations

from typing import IO, Any, Callable, Iterable, List, Optional, Sequence

from .entries import Entries
from .protocol import ENTRY_TYPES, SourceStatus


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
