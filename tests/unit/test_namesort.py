"""Sorting a directory's rows in packed runs: the same order and cut as one sort, less memory."""

from __future__ import annotations

import random
import tracemalloc
from itertools import chain

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zdir import namesort

pytestmark = pytest.mark.timeout(60)

# Names as a file system gives them: no NUL, no '/'; some undecodable (surrogate
# escapes), some outside the BMP, some prefixes of others ("a" < "a-b" < "a.b").
name_chars = st.sampled_from(["a", "b", "-", ".", " ", "é", "\udce9", "\udcff", "\U0001f600",
                              "\x01", "\uffff"])
names = st.lists(st.text(name_chars, min_size=1, max_size=4), unique=True, max_size=60)


def fed(sorter: namesort.SortedRows, rows):
    """Add rows as the lister's reader does, then drain: what the walk would see."""
    held = 0
    for row in rows:
        sorter.rows.append(row)
        held = max(held, len(sorter.rows))
        if len(sorter.rows) >= sorter.check_at:
            sorter.settle()
    return list(chain.from_iterable(sorter.drain())), held


def one_sort(rows, keep, listed):
    """The reference: sort everything, cut after the keep-th listed row."""
    ordered, count = sorted(rows), 0
    for index, row in enumerate(ordered):
        if listed is None or listed(row):
            count += 1
            if count == keep:
                return ordered[:index + 1]
    return ordered


def odd_length(row: str) -> bool:
    return len(namesort.row_name(row)) % 2 == 1


@settings(max_examples=300, deadline=None)
@given(names=names, letters=st.lists(st.sampled_from("fdlo"), min_size=60, max_size=60),
       keep=st.integers(1, 70), glob=st.booleans(), run=st.integers(1, 7),
       block=st.integers(1, 4), slack=st.integers(0, 3))
def test_packed_runs_give_what_one_sort_gives(names, letters, keep, glob, run, block, slack):
    rows = [namesort.row(name, letter) for name, letter in zip(names, letters)]
    listed = odd_length if glob else None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(namesort, "RUN_ENTRIES", run)
        patch.setattr(namesort, "BLOCK_ENTRIES", block)
        patch.setattr(namesort, "TRIM_SLACK", slack)
        got, held = fed(namesort.SortedRows(keep, listed), rows)
    assert got == one_sort(rows, keep, listed)
    assert held <= max(run, 1)  # never more than a run unpacked while reading


def test_rows_sort_as_their_names_do():
    assert namesort.row("a", "d") < namesort.row("a-b", "f") < namesort.row("a.b", "f")
    assert namesort.row_name(namesort.row("a b", "l")) == "a b"


def test_a_big_directory_is_held_packed_not_as_strings(monkeypatch):
    monkeypatch.setattr(namesort, "RUN_ENTRIES", 16_384)
    count = 300_000
    order = list(range(count))
    random.Random(7).shuffle(order)
    as_strings = count * (len("file-0000000\0f") + 49 + 8)  # str header, list slot: ~71 B
    tracemalloc.start()
    try:
        sorter = namesort.SortedRows(10_000_000)
        for i in order:  # each row made afresh, as scandir's names are
            sorter.rows.append(namesort.row(f"file-{i:07d}", "f"))
            if len(sorter.rows) >= sorter.check_at:
                sorter.settle()
        batches = sorter.drain()
        first_batch = next(batches)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    first, rest = first_batch[0], first_batch[1:] + list(chain.from_iterable(batches))
    assert first == namesort.row("file-0000000", "f")
    # Packed runs, about 15 B a row, and one run's list: not every row as a string.
    assert peak < as_strings / 2, (peak, as_strings)
    assert len(rest) == count - 1 and rest == sorted(rest) and rest[0] > first


def test_a_directory_far_past_the_limit_keeps_about_twice_the_limit(monkeypatch):
    monkeypatch.setattr(namesort, "RUN_ENTRIES", 100)
    compactions = []
    real_compact = namesort.SortedRows._compact

    def compact(self):
        compactions.append(self._packed)
        real_compact(self)

    monkeypatch.setattr(namesort.SortedRows, "_compact", compact)
    rows = [namesort.row(f"n{i:06d}", "f") for i in range(50_000)]
    random.Random(3).shuffle(rows)
    sorter = namesort.SortedRows(300)
    packed = 0
    for row in rows:
        sorter.rows.append(row)
        if len(sorter.rows) >= sorter.check_at:
            sorter.settle()
            packed = max(packed, sorter._packed)
    assert packed <= 2 * 300 + 100  # compacted to the limit, never the whole directory
    # Rows past the limit's cutoff are dropped as they are read, so compacting is rare
    # (without the cutoff: every 400 rows, over 100 times here).
    assert 1 <= len(compactions) <= 10, compactions
    assert list(chain.from_iterable(sorter.drain())) == sorted(rows)[:300]
