"""Source names folded into ranges (``node[0001-0498,0500-1000]``), expanded back, and selected.

Pure: strings in, strings out; nothing of ours is imported. The idea is
ClusterShell's nodesets: a thousand names that differ by a number read as one
pattern. Here only what zdir's output and ``--source`` need:

- ``fold(names)``: the names as comma-separated patterns, one per prefix and
  suffix around the *last* run of digits (``rack1-n[01-20]``), zero padding
  kept, names without digits as they are; the same text whatever the order of
  the names.
- ``expand(pattern)``: the names a pattern stands for (several brackets in one
  pattern multiply: ``r[1-2]n[1-3]`` is six names).
- ``Selector(text)``: ``--source`` values, globs (``fnmatch``, case-sensitive)
  and ranges mixed (``web*``, ``node[0001-0100]``, ``rack[1-2]-*``).

A bracket that holds only digits, ``-`` and ``,`` is a range: ``web[12]`` is
``web12``, as in ClusterShell; any other bracket is a glob's character class
(``web[!0-9]*``). A name holding ``[``, ``]`` or ``,`` is left unfolded, and
no pattern can stand for it: select it by its exact name.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

#: Up to this many sources, people read them one by one: fold only above it.
HANDFUL = 8
#: expand() refuses patterns standing for more names than this (a typo such as
#: ``node[1-100000000]`` would otherwise eat the machine's memory).
MAX_EXPANSION = 1_000_000

_LAST_NUMBER = re.compile(r"([0-9]+)([^0-9]*)\Z")  # [0-9]: \d would take Arabic-Indic digits too
_RANGE_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+))?\Z")
_RANGE_BODY = re.compile(r"[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*\Z")
_SPECIAL = frozenset("[],")
_DIGITS = frozenset("0123456789")


class PatternError(ValueError):
    """A pattern that cannot be read: unbalanced brackets, a reversed range, too many names."""


# -- folding -----------------------------------------------------------------------------------

def fold(names: Iterable[str]) -> str:
    """The names as one comma-separated nodeset, e.g. ``node[0001-0041,0043-1000],web``."""
    return ",".join(fold_parts(names))


def fold_parts(names: Iterable[str]) -> List[str]:
    """The patterns of ``fold``, one per prefix and suffix, sorted by prefix then suffix."""
    groups: Dict[Tuple[str, str], List[str]] = {}
    parts: List[Tuple[Tuple[str, str, int], str]] = []
    for name in set(names):
        found = _LAST_NUMBER.search(name)
        if found is None or not _SPECIAL.isdisjoint(name):
            parts.append(((name, "", 0), name))
            continue
        prefix, suffix = name[: found.start()], found.group(2)
        groups.setdefault((prefix, suffix), []).append(found.group(1))
    for (prefix, suffix), numbers in groups.items():
        if len(numbers) == 1:
            parts.append(((prefix, suffix, 1), prefix + numbers[0] + suffix))
        else:
            parts.append(((prefix, suffix, 1), f"{prefix}[{fold_numbers(numbers)}]{suffix}"))
    parts.sort()
    return [text for _, text in parts]


def fold_numbers(numbers: Iterable[str]) -> str:
    """Digit strings as a range list: ``0001-0041,0043-1000``; each string keeps its padding.

    A string with a leading zero is padded to its length. One without (``1000``)
    joins the padded strings of its length when there are any, so that
    ``0998 0999 1000`` is one range; otherwise it is unpadded.
    """
    unique = set(numbers)
    padded_widths = {len(n) for n in unique if len(n) > 1 and n[0] == "0"}
    by_width: Dict[int, List[int]] = {}
    for n in unique:
        width = len(n) if len(n) in padded_widths else 0
        by_width.setdefault(width, []).append(int(n))
    runs: List[Tuple[int, int, int]] = []  # (first, width, last)
    for width, values in by_width.items():
        values.sort()
        first = last = values[0]
        for value in values[1:]:
            if value != last + 1:
                runs.append((first, width, last))
                first = value
            last = value
        runs.append((first, width, last))
    runs.sort()
    return ",".join(
        _pad(first, width) if first == last else f"{_pad(first, width)}-{_pad(last, width)}"
        for first, width, last in runs
    )


def _pad(value: int, width: int) -> str:
    return str(value).zfill(width)


# -- expanding ---------------------------------------------------------------------------------

class _Range(NamedTuple):
    """One item of a bracket: ``first-last`` (or one number), each value padded to ``width``."""

    first: int
    last: int
    width: int

    def __contains__(self, digits: object) -> bool:
        if not isinstance(digits, str) or not digits or not _DIGITS.issuperset(digits):
            return False
        value = int(digits)
        return self.first <= value <= self.last and _pad(value, self.width) == digits

    def __len__(self) -> int:
        return self.last - self.first + 1

    def values(self) -> Iterable[str]:
        return (_pad(value, self.width) for value in range(self.first, self.last + 1))


def expand(pattern: str) -> List[str]:
    """Every name a nodeset stands for, in the pattern's order, each once.

    Raises PatternError for unbalanced brackets, a bracket that is not a range
    list, a reversed range, or more than MAX_EXPANSION names.
    """
    names: Dict[str, None] = {}
    for part in split_top_level(pattern):
        if not part:
            continue
        for name in _expand_part(part):
            names[name] = None
            if len(names) > MAX_EXPANSION:
                raise PatternError(f"{pattern!r} stands for more than {MAX_EXPANSION} names")
    return list(names)


def _expand_part(part: str) -> List[str]:
    """One comma-free pattern: literal text and brackets, the brackets multiplied out."""
    results = [""]
    for literal, ranges in _tokens(part):
        if ranges is None:
            results = [r + literal for r in results]
            continue
        size = sum(len(r) for r in ranges)
        if size * len(results) > MAX_EXPANSION:
            raise PatternError(f"{part!r} stands for more than {MAX_EXPANSION} names")
        results = [r + value for r in results for item in ranges for value in item.values()]
    return results


def _tokens(part: str) -> Iterable[Tuple[str, Optional[List[_Range]]]]:
    """Literal text (ranges None) and brackets (their ranges), left to right."""
    position = 0
    while position < len(part):
        opening = part.find("[", position)
        closing = part.find("]", position)
        if closing != -1 and (opening == -1 or closing < opening):
            raise PatternError(f"{part!r}: ']' without '['")
        if opening == -1:
            yield part[position:], None
            return
        end = part.find("]", opening)
        if end == -1:
            raise PatternError(f"{part!r}: '[' without ']'")
        yield part[position:opening], None
        yield "", parse_ranges(part[opening + 1:end])
        position = end + 1


def parse_ranges(body: str) -> List[_Range]:
    """``0001-0100,0200``: the items of a bracket. Raises PatternError when it is not one."""
    if not _RANGE_BODY.match(body):
        raise PatternError(f"[{body}] is not a range list like [1-10,12] or [001-100]")
    items = []
    for text in body.split(","):
        match = _RANGE_ITEM.match(text)
        assert match is not None  # _RANGE_BODY matched: each item has this shape
        first_text, last_text = match.group(1), match.group(2) or match.group(1)
        width = len(first_text) if len(first_text) > 1 and first_text[0] == "0" else 0
        if last_text[0] == "0" and len(last_text) > 1 and len(last_text) != width:
            raise PatternError(f"[{body}]: {first_text}-{last_text} mixes paddings")
        first, last = int(first_text), int(last_text)
        if first > last:
            raise PatternError(f"[{body}]: {first_text}-{last_text} is reversed")
        items.append(_Range(first, last, width))
    return items


def split_top_level(text: str) -> List[str]:
    """Split on the commas outside brackets: ``a[1,3],b`` is ``a[1,3]`` and ``b``."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


# -- selecting ---------------------------------------------------------------------------------

_Segment = Tuple[str, object]  # ("text", str) | ("star", None) | ("one", None)
#                                | ("class", compiled regex) | ("range", [_Range])


class Selector:
    """One ``--source`` value: names, globs and ranges, separated by commas outside brackets.

    A value that is exactly a source's name selects that source whatever it
    contains (a name may hold ``*`` or ``[``); otherwise the value is a pattern.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._alternatives = [_segments(part) for part in split_top_level(text) if part]

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"

    def matches(self, name: str) -> bool:
        """True when the name is the selector's text or matches one of its patterns."""
        return name == self.text or any(_match(segs, name) for segs in self._alternatives)


def select(selectors: Sequence[str], names: Sequence[str]) -> Tuple[List[str], List[str]]:
    """The names chosen by any selector (in the names' order), and the selectors that chose none.

    Raises PatternError when a selector cannot be read.
    """
    compiled = [Selector(text) for text in selectors]
    used = [False] * len(compiled)
    chosen = []
    for name in names:
        hit = False
        for index, selector in enumerate(compiled):
            if selector.matches(name):
                used[index] = hit = True
        if hit:
            chosen.append(name)
    return chosen, [s.text for s, u in zip(compiled, used) if not u]


def _segments(part: str) -> List[_Segment]:
    """A glob-and-range pattern as segments, with fnmatch's rules for brackets and wildcards."""
    segments: List[_Segment] = []
    text: List[str] = []

    def flush() -> None:
        if text:
            segments.append(("text", "".join(text)))
            text.clear()

    index, size = 0, len(part)
    while index < size:
        char = part[index]
        if char in "*?":
            flush()
            if not (char == "*" and segments and segments[-1][0] == "star"):
                segments.append(("star" if char == "*" else "one", None))
            index += 1
            continue
        if char == "[":
            end = _class_end(part, index)
            if end is not None:
                flush()
                body = part[index + 1:end]
                if _RANGE_BODY.match(body):
                    segments.append(("range", parse_ranges(body)))
                else:
                    regex = fnmatch.translate(part[index:end + 1])
                    segments.append(("class", re.compile(regex).match))
                index = end + 1
                continue
        text.append(char)
        index += 1
    flush()
    return segments


def _class_end(pattern: str, start: int) -> Optional[int]:
    """Where fnmatch closes the bracket opened at ``start`` (None: the ``[`` is a literal)."""
    index = start + 1
    if index < len(pattern) and pattern[index] == "!":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    end = pattern.find("]", index)
    return None if end == -1 else end


def _match(segments: Sequence[_Segment], name: str) -> bool:
    """Whether some reading of the segments spells the name (backtracking, memoised)."""
    seen: Dict[Tuple[int, int], bool] = {}

    def at(seg: int, pos: int) -> bool:
        key = (seg, pos)
        if key in seen:
            return seen[key]
        result = _step(segments, name, seg, pos, at)
        seen[key] = result
        return result

    return at(0, 0)


def _step(segments: Sequence[_Segment], name: str, seg: int, pos: int,
          at: Callable[[int, int], bool]) -> bool:
    if seg == len(segments):
        return pos == len(name)
    kind, value = segments[seg]
    if kind == "text":
        literal = str(value)
        return name.startswith(literal, pos) and at(seg + 1, pos + len(literal))
    if kind == "star":
        return any(at(seg + 1, end) for end in range(pos, len(name) + 1))
    if kind == "one":
        return pos < len(name) and at(seg + 1, pos + 1)
    if kind == "class":
        matches: Callable[[str], object] = value  # type: ignore[assignment]
        return pos < len(name) and bool(matches(name[pos])) and at(seg + 1, pos + 1)
    end = pos  # a range: any digit string from the range list
    while end < len(name) and name[end] in _DIGITS:
        end += 1
    ranges: List[_Range] = value  # type: ignore[assignment]
    return any(at(seg + 1, stop) for stop in range(pos + 1, end + 1)
               if any(name[pos:stop] in item for item in ranges))
