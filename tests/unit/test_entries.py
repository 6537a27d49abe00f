"""Entries in columns, and the writers' column fast paths held to the per-entry ones."""

from __future__ import annotations

import io
import math
import stat
import time
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zdir import jsonformat, longformat, output
from zdir.entries import Entries, Entry
from zdir.chunkframes import Chunk
from zdir.protocol import SourceStatus

pytestmark = pytest.mark.timeout(60)

FILE = stat.S_IFREG | 0o644
NAMES = ["plain", "quote\"d", "back\\slash", "new\nline", "tab\t", "del\x7f", "ünï", "日本",
         "\udcff\udcfebad", " lead", "", "emoji\U0001f600"]

names = st.text(min_size=1, max_size=12)
numbers = st.one_of(st.none(), st.integers(-(2 ** 63), 2 ** 64 - 1))
times = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
entries = st.builds(Entry, names, st.sampled_from(["file", "dir", "symlink", "other"]),
                    numbers, times, numbers, st.sampled_from(["a", "b\"", "ç"]))


def slow_json(rows, key="entries", sources=()):
    """The reference: json.dump of one dict per entry, as write_json does without columns."""
    out = io.StringIO()
    jsonformat.write_json(iter(rows), sources, out, key=key)
    return out.getvalue()


def fast_json(rows, key="entries", sources=()):
    out = io.StringIO()
    jsonformat.write_json(Entries.from_entries(rows), sources, out, key=key)
    return out.getvalue()


@given(st.lists(entries, max_size=40))
def test_json_columns_write_exactly_what_json_dump_writes(rows):
    assert fast_json(rows) == slow_json(rows)


def test_json_columns_on_awkward_values():
    rows = [Entry(name, "file", size, mtime, mode, "src")
            for name, size, mtime, mode in zip(
                NAMES, [0, None, 2 ** 70, 5, True, 7, 8, 9, 10, 11, 12, 13],
                [1.5, None, 1e300, -0.5, 2.0, 3.25, 1.7e9, 0.1, 5e-324, 1.0, 2.5, 7.0],
                [FILE, None, FILE, 0, FILE, FILE, 0o40755, FILE, FILE, FILE, FILE, FILE])]
    sources = [SourceStatus("src", True, entries=len(rows))]
    assert fast_json(rows, sources=sources) == slow_json(rows, sources=sources)
    odd = [Entry("x", "file", 1, math.nan, 1, "s"), Entry("y", "dir", 2, math.inf, 1, "s")]
    assert fast_json(odd) == slow_json(odd)  # NaN and Infinity, as json.dump spells them
    mixed = [Entry("x", "file", 1, 1.0, 1, "s"), Entry("y", "file", 1.0, 1, True, "s")] * 300
    assert fast_json(mixed) == slow_json(mixed)  # 1, 1.0 and True stay apart
    assert fast_json([]) == slow_json([])
    zeros = [Entry("0", "file", None, 0.0, None, "a"), Entry("0", "file", None, -0.0, None, "a")]
    assert fast_json(zeros * 200) == slow_json(zeros * 200)  # one dict key, two texts


def test_ndjson_and_plain_columns_match_the_per_entry_writers():
    rows = [Entry(name, "file", 1, 2.5, FILE, "s") for name in NAMES] * 3
    fast, slow = io.StringIO(), io.StringIO()
    jsonformat.write_ndjson(Entries.from_entries(rows), [], fast)
    jsonformat.write_ndjson(iter(rows), [], slow)
    assert fast.getvalue() == slow.getvalue()
    fast, slow = io.StringIO(), io.StringIO()
    output.write_plain(Entries.from_entries(rows), fast)
    output.write_plain(iter(rows), slow)
    assert fast.getvalue() == slow.getvalue()


STYLES = [output.Style(), output.Style(human=True, time_style="iso"),
          output.Style(time_style="full-iso", classify=True),
          output.Style(time_style="long-iso", colors=output.ls_colors("di=0:ex=")),
          output.Style(classify=True, colors=output.ls_colors(None))]
modes = st.one_of(st.none(), st.sampled_from([FILE, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777,
                                              FILE | 0o111, stat.S_IFIFO | 0o600, 0, 0o7777]),
                  st.integers(0, 0o177777))
long_rows = st.builds(Entry, names, st.sampled_from(["file", "dir", "symlink", "other"]),
                      st.one_of(st.none(), st.integers(0, 2 ** 64)),
                      st.one_of(st.none(), st.floats(-1e11, 1e11),
                                st.integers(-10 ** 10, 10 ** 10)),
                      modes, st.sampled_from(["a", "bb", "ç\n"]))


def long_texts(rows, style, batch_size=7):
    """The long format of the same rows by the column path (in batches) and per entry."""
    fast, whole, slow = io.StringIO(), io.StringIO(), io.StringIO()
    columns = Entries.from_entries(rows)
    several = SimpleNamespace(batches=lambda: columns.batches(batch_size))  # as a Reply gives
    longformat.write_long(several, fast, style)
    longformat.write_long(columns, whole, style)
    longformat.write_long(iter(rows), slow, style)
    assert whole.getvalue() == fast.getvalue()
    return fast.getvalue(), slow.getvalue()


@given(st.lists(long_rows, max_size=30), st.sampled_from(STYLES))
def test_long_columns_write_exactly_what_the_per_entry_writer_writes(rows, style):
    fast, slow = long_texts(rows, style)
    assert fast == slow


def test_long_columns_on_awkward_values():
    now = time.time()
    half_year = 31556952 // 2
    times = [now, now - half_year - 0.4, now - half_year + 0.6, now + 3599.2, now + 3600.7,
             1.9999997, -0.5, -1.2, 0.0, None, 1e11, 1_700_000_000.123456]
    rows = [Entry(name, kind, size, mtime, mode, source)
            for name, kind, size, mtime, mode, source in zip(
                NAMES, ["file", "dir", "symlink", "other"] * 3,
                [0, None, 2 ** 70, 5, True, 1023, 1024, 1536, 10 ** 6, 11, 12, 13], times,
                [FILE, None, stat.S_IFLNK | 0o777, 0, True, FILE | 0o755, 0o40755, None,
                 stat.S_IFSOCK | 0o755, FILE, FILE, FILE],
                ["s", "t", "s\t"] * 4)] * 3
    for style in STYLES:
        fast, slow = long_texts(rows, style)
        assert fast == slow
    assert long_texts([], output.Style()) == ("", "")


def test_from_chunks_decodes_names_and_fills_missing_columns():
    with_stat = Chunk(["b", b"caf\xe9"], "fd", [1, None], [1.5, None], [FILE, None])
    without = Chunk(["a"], "l")
    merged = Entries.from_chunks([("one", with_stat), ("two", without)])
    assert list(merged) == [
        Entry("b", "file", 1, 1.5, FILE, "one"),
        Entry("caf\udce9", "dir", None, None, None, "one"),
        Entry("a", "symlink", None, None, None, "two"),
    ]
    assert len(merged) == 3 and merged[2] == Entry("a", "symlink", None, None, None, "two")
    assert list(merged[1:]) == list(merged)[1:]


def test_sort_by_name_keeps_the_sources_order_for_equal_names():
    merged = Entries.from_chunks([
        ("a", Chunk(["x", "m"], "ff")),
        ("b", Chunk(["m", "c"], "fd")),
    ])
    merged.sort()
    assert [(e.name, e.source, e.type) for e in merged] == [
        ("c", "b", "dir"), ("m", "a", "file"), ("m", "b", "file"), ("x", "a", "file")]
    merged.sort(reverse=True)
    assert [(e.name, e.source) for e in merged] == [("x", "a"), ("m", "b"), ("m", "a"), ("c", "b")]


def test_batches_cover_every_entry_once():
    merged = Entries.from_entries(Entry(f"n{i}", "file", i, None, None, "s") for i in range(25))
    assert [len(b) for b in merged.batches(10)] == [10, 10, 5]
    assert [e for b in merged.batches(10) for e in b] == list(merged)


@pytest.mark.skipif("target" not in Entry._fields, reason="symlink targets not in Entry yet")
def test_long_columns_show_known_targets_as_the_per_entry_writer_does():
    rows = [Entry("a", "file", 1, 1.5, FILE, "s"),
            Entry("l\tink", "symlink", 4, 1.5, stat.S_IFLNK | 0o777, "s", "a"),  # type: ignore
            Entry("dangling", "symlink", 4, 1.5, stat.S_IFLNK | 0o777, "s")]
    for style in STYLES:
        fast, slow = long_texts(rows, style, batch_size=2)
        assert fast == slow
        assert "ink\x1b[0m -> a\n" in fast or "ink -> a\n" in fast


@given(st.lists(st.builds(Entry, st.sampled_from(["x", "y", "z\n", "ü"]),
                          st.sampled_from(["file", "dir", "symlink"]), st.none(), st.none(),
                          modes, st.sampled_from(["a", "b", "c"])), max_size=30),
       st.sampled_from(STYLES), st.booleans())
def test_plain_columns_group_names_as_the_per_entry_writer_does(rows, style, where):
    sources = [SourceStatus(name, True, entries=1) for name in ("c", "a", "b")]
    fast, slow = io.StringIO(), io.StringIO()
    columns = Entries.from_entries(rows)
    output.write_plain(SimpleNamespace(batches=lambda: columns.batches(4)), fast, style, sources,
                       where)
    output.write_plain(iter(rows), slow, style, sources, where)
    assert fast.getvalue() == slow.getvalue()
    unique = [Entry(f"n{i}", "file", None, None, FILE, "ab"[i % 2]) for i in range(9)]
    fast, slow = io.StringIO(), io.StringIO()
    output.write_plain(Entries.from_entries(unique), fast, style, sources)
    output.write_plain(iter(unique), slow, style, sources)
    assert fast.getvalue() == slow.getvalue()


@given(st.lists(st.builds(Entry, st.sampled_from(["x", "y", "z\n", "ü"]),
                          st.sampled_from(["file", "dir", "symlink"]), st.none(), st.none(),
                          modes, st.sampled_from(["a", "b", "c"])), max_size=30),
       st.sampled_from(STYLES), st.booleans(), st.integers(1, 7))
def test_grouped_names_in_listing_order_as_the_per_entry_writer_does(rows, style, where, size):
    """The paged client's writer (equal names adjacent, batches of any size, a name's
    copies split across batches) writes what the per-entry grouping writes."""
    rows = sorted(rows, key=lambda entry: entry.name)
    sources = [SourceStatus(name, True, entries=1) for name in ("c", "a", "b")]
    columns = Entries.from_entries(rows)
    listing = SimpleNamespace(ordered=True, batches=lambda: columns.batches(size))
    fast, slow = io.StringIO(), io.StringIO()
    output.write_plain(listing, fast, style, sources, where)
    output.write_plain(iter(rows), slow, style, sources, where)
    assert fast.getvalue() == slow.getvalue()
