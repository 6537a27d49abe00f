"""Rendering without servers: ls-style names, sizes, modes, times; JSON; compare; progress."""

from __future__ import annotations

import io
import json
import stat
import threading
import time
from typing import NamedTuple, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zdir import compareformat, jsonformat, longformat, output, progress
from zdir.compare import compare, differing
from zdir.longformat import format_time, human_size
from zdir.output import Style, escape_name, kind, show_name
from zdir.protocol import SourceStatus

pytestmark = pytest.mark.timeout(30)


class E(NamedTuple):
    """The fields of client.Entry, without importing the client (and zmq)."""

    name: str
    type: str = "file"
    size: Optional[int] = 0
    mtime: Optional[float] = 1_700_000_000.0
    mode: Optional[int] = stat.S_IFREG | 0o644
    source: str = "a"


@pytest.fixture
def utc_plus_0530(monkeypatch):
    """A fixed zone with a half-hour offset, so that %z and local dates are tested."""
    monkeypatch.setenv("TZ", "ZDT-5:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# -- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, shown", [
    ("plain.txt", "plain.txt"),
    ("new\nline", "new\\nline"),
    ("tab\there", "tab\\there"),
    ("back\\slash", "back\\\\slash"),
    ("esc\x1b[31m", "esc\\033[31m"),
    ("bad\udcff", "bad\\377"),
    ("日本語", "日本語"),
])
def test_escape_name_like_ls_b(name, shown):
    assert escape_name(name) == shown


def test_a_name_cannot_smuggle_colour_or_lines():
    entry = E("x\x1b[0m\n", type="dir", mode=stat.S_IFDIR | 0o755)
    shown = show_name(entry, Style(colors=output.DEFAULT_COLORS, classify=True))
    assert shown == "\x1b[01;34mx\\033[0m\\n\x1b[0m/"


# -- sizes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size, shown", [
    (0, "0"), (1, "1"), (1023, "1023"), (1024, "1.0K"), (1025, "1.1K"), (1536, "1.5K"),
    (10 * 1024 - 1, "10K"), (10 * 1024, "10K"), (10 * 1024 + 1, "11K"),
    (1023 * 1024 + 1, "1.0M"), (1048575, "1.0M"), (1048576, "1.0M"), (1048577, "1.1M"),
    (5 * 1024**3, "5.0G"), (1024**4, "1.0T"), (None, "?"),
])
def test_human_size_matches_gnu_ls_h(size, shown):
    assert human_size(size) == shown


@given(st.integers(min_value=1024, max_value=1024**7))
def test_human_size_is_the_smallest_shown_value_not_below_the_size(size):
    shown = human_size(size)
    number, suffix = shown[:-1], shown[-1]
    scale = 1024 ** ("KMGTPEZYRQ".index(suffix) + 1)
    step = 0.1 if "." in number else 1
    assert float(number) * scale >= size  # rounded up, never down
    below = float(number) - step
    # One display step less would be too small, unless the unit changed (1.0M after 1023K).
    assert below * scale < size or below < 1


# -- modes, kinds, indicators, colours ------------------------------------------------------

def test_mode_string_unknown_keeps_the_type():
    assert longformat.mode_string("dir", None) == "d?????????"
    assert longformat.mode_string("file", stat.S_IFREG | 0o4755) == "-rwsr-xr-x"


@pytest.mark.parametrize("entry_type, mode, expected", [
    ("dir", stat.S_IFDIR | 0o755, "di"),
    ("symlink", stat.S_IFLNK | 0o777, "ln"),
    ("file", stat.S_IFREG | 0o755, "ex"),
    ("file", stat.S_IFREG | 0o644, "fi"),
    ("file", None, "fi"),
    ("other", stat.S_IFIFO | 0o644, "pi"),
    ("other", stat.S_IFSOCK | 0o755, "so"),
    ("other", stat.S_IFCHR | 0o666, "cd"),
    ("other", None, ""),
])
def test_kind(entry_type, mode, expected):
    assert kind(entry_type, mode) == expected


def test_classify_indicators_like_ls_F():
    style = Style(classify=True)
    shown = [show_name(E(n, t, mode=m), style) for n, t, m in [
        ("d", "dir", stat.S_IFDIR | 0o755), ("l", "symlink", stat.S_IFLNK | 0o777),
        ("p", "other", stat.S_IFIFO | 0o644), ("s", "other", stat.S_IFSOCK | 0o644),
        ("x", "file", stat.S_IFREG | 0o700), ("f", "file", stat.S_IFREG | 0o600),
    ]]
    assert shown == ["d/", "l@", "p|", "s=", "x*", "f"]


def test_ls_colors_overrides_kinds_and_ignores_extensions():
    colors = output.ls_colors("di=00;32:ex=:*.tar=01;31:rs=0:ln=target")
    assert colors["di"] == "00;32" and colors["ln"] == output.DEFAULT_COLORS["ln"]
    assert "*.tar" not in colors and "rs" not in colors
    assert show_name(E("run", mode=stat.S_IFREG | 0o755), Style(colors=colors)) == "run"
    assert show_name(E("d", "dir"), Style(colors=colors)) == "\x1b[00;32md\x1b[0m"
    assert output.ls_colors(None) == output.DEFAULT_COLORS


# -- times ------------------------------------------------------------------------------------

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC, 2023-11-15 03:43:20 at +05:30


@pytest.mark.parametrize("mtime, style, shown", [
    (NOW - 60, "locale", "Nov 15 03:42"),
    (NOW - 400 * 86400, "locale", "Oct 11  2022"),
    (NOW + 2 * 86400, "locale", "Nov 17  2023"),  # the future shows the year, as in ls
    (NOW + 60, "locale", "Nov 15 03:44"),  # ...unless within the servers' clock skew
    (NOW - 60, "iso", "11-15 03:42"),
    (NOW - 400 * 86400, "iso", "2022-10-11 "),
    (NOW - 60, "long-iso", "2023-11-15 03:42"),
    (NOW + 0.123456, "full-iso", "2023-11-15 03:43:20.123456000 +0530"),
    (NOW + 0.9999996, "full-iso", "2023-11-15 03:43:21.000000000 +0530"),
    (-0.5, "full-iso", "1970-01-01 05:29:59.500000000 +0530"),
    (None, "iso", "?"),
    (1e300, "locale", "?"),
])
def test_format_time_styles(utc_plus_0530, mtime, style, shown):
    assert format_time(mtime, NOW, style) == shown


def test_recent_means_gnu_half_year(utc_plus_0530):
    half_year = 31556952 // 2
    assert ":" in format_time(NOW - half_year + 60, NOW)
    assert ":" not in format_time(NOW - half_year - 60, NOW)


# -- long format ------------------------------------------------------------------------------

def test_long_columns_align_and_sizes_go_right():
    entries = [E("small", size=5, source="server_a"), E("big", size=123456789, source="b"),
               E("unknown", size=None, mtime=None, mode=None, source="server_a")]
    out = io.StringIO()
    longformat.write_long(entries, out, Style(time_style="long-iso"))
    lines = out.getvalue().splitlines()
    names = ("small", "big", "unknown")
    assert len({line.index(name) for line, name in zip(lines, names)}) == 1
    assert [line[11:20] for line in lines] == ["        5", "123456789", "        ?"]
    assert lines[1].endswith(" b        big")
    assert lines[2].startswith("-????????? ")
    human = io.StringIO()
    longformat.write_long(entries, human, Style(human=True))
    assert [line.split()[1] for line in human.getvalue().splitlines()] == ["5", "118M", "?"]


# -- JSON and NDJSON -------------------------------------------------------------------------

SOURCES = (SourceStatus("a", True, "tcp://a:1"), SourceStatus("b", False, "tcp://b:2",
                                                              {"code": "timeout", "message": "x"}))


def test_ndjson_lines_then_sources_last():
    out = io.StringIO()
    jsonformat.write_ndjson([E("x"), E("bad\udcff", source="b")], SOURCES, out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"name": "x", "type": "file", "size": 0, "mtime": 1_700_000_000.0,
                        "mode": stat.S_IFREG | 0o644, "source": "a"}
    assert lines[1]["name"] == "bad\udcff"
    assert [s["name"] for s in lines[2]["sources"]] == ["a", "b"]
    assert lines[2]["sources"][1]["error"]["code"] == "timeout"


def test_ndjson_streams_each_entry_before_the_next_is_decoded():
    out = io.StringIO()
    seen = []

    def entries():
        yield E("first")
        seen.append(out.getvalue())  # what had been written when the second was asked for
        yield E("second")

    jsonformat.write_ndjson(entries(), (), out)
    assert json.loads(seen[0])["name"] == "first"


def test_json_document_keys():
    out = io.StringIO()
    jsonformat.write_json([E("x")], SOURCES, out)
    assert set(json.loads(out.getvalue())) == {"entries", "sources"}


# -- compare ----------------------------------------------------------------------------------

OK3 = tuple(SourceStatus(name, True) for name in ("a", "b", "c"))


def test_compare_every_status():
    entries = [
        E("same", source="a"), E("same", source="b"),
        E("size", size=1, source="a"), E("size", size=2, source="b"),
        E("type", source="a"), E("type", "dir", source="b"),
        E("old", mtime=10.0, source="b"), E("old", mtime=5000.0, size=9, source="a"),
        E("close", mtime=10.0, source="a"), E("close", mtime=10.9, source="b"),
        E("dirs", "dir", size=4096, mtime=1.0, source="a"),
        E("dirs", "dir", size=60, mtime=2e9, source="b"),
        E("only_a", source="a"), E("only_b", source="b"),
    ]
    result = {c.name: c for c in compare(entries, OK3[:2], window=1.0)}
    assert list(result) == sorted(result)
    assert {name: (c.status, c.differs, c.missing) for name, c in result.items()} == {
        "close": ("same", (), ()),
        "dirs": ("same", (), ()),
        "old": ("differs", ("size", "mtime"), ()),
        "only_a": ("only", (), ("b",)),
        "only_b": ("only", (), ("a",)),
        "same": ("same", (), ()),
        "size": ("differs", ("size",), ()),
        "type": ("differs", ("type",), ()),
    }
    assert list(result["old"].copies) == ["a", "b"]  # the sources' order, not arrival order
    assert compareformat.compare_status(result["old"]) == "differs (size, mtime)"
    assert compareformat.compare_status(result["only_b"]) == "only on b"


def test_compare_three_sources_and_a_failed_one():
    statuses = (OK3[0], SourceStatus("b", False, error={"code": "timeout", "message": "t"}),
                OK3[2])
    entries = [E("x", source="a"), E("x", size=3, source="c"), E("y", source="a")]
    x, y = compare(entries, statuses, window=0)
    assert compareformat.compare_status(x) == "only on a, c; differs (size)"
    assert (x.missing, x.unknown) == ((), ("b",))  # b failed: it could not tell
    assert compareformat.compare_status(y) == "only on a"
    assert (y.missing, y.unknown) == (("c",), ("b",))
    two = compare([E("z", source="a"), E("z", source="c")],
                  tuple(SourceStatus(n, True) for n in "abc"), window=0)[0]
    assert compareformat.compare_status(two) == "only on a, c"


def test_modify_window_is_inclusive_and_unknown_mtimes_differ_from_known():
    a, b = E("x", mtime=10.0, source="a"), E("x", mtime=11.0, source="b")
    assert differing([a, b], 1.0) == ()
    assert differing([a, b], 0.5) == ("mtime",)
    assert differing([a, b._replace(mtime=None)], 1.0) == ("mtime",)
    assert differing([a._replace(mtime=None), b._replace(mtime=None)], 0) == ()


def test_compare_json_and_text_shapes():
    comparisons = compare([E("f", size=1, source="a"), E("f", size=2, source="b"),
                           E("long name", source="a")], OK3[:2], window=1.0)
    record = compareformat.compare_dict(comparisons[0])
    assert record == {
        "name": "f", "status": "differs", "differs": ["size"], "missing": [], "unknown": [],
        "sources": {"a": {"type": "file", "size": 1, "mtime": 1_700_000_000.0,
                          "mode": stat.S_IFREG | 0o644},
                    "b": {"type": "file", "size": 2, "mtime": 1_700_000_000.0,
                          "mode": stat.S_IFREG | 0o644}},
    }
    out = io.StringIO()
    compareformat.write_compare(comparisons, out, Style(classify=True))
    assert out.getvalue().splitlines() == ["differs (size)  f", "only on a       long name"]


# -- progress ---------------------------------------------------------------------------------

class Screen(io.StringIO):
    """A stream that says when something was written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn = threading.Event()

    def write(self, text: str) -> int:
        self.drawn.set()
        return super().write(text)


def test_progress_draws_after_the_delay_and_blanks_its_line(monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    screen = Screen()
    with progress.Progress(screen, "tcp://h:1") as line:
        assert screen.drawn.wait(5)
        line.sources = (SOURCES[0]._replace(entries=7), SOURCES[1])
        while " entries... " not in screen.getvalue():  # redrawn every INTERVAL
            screen.drawn.clear()
            assert screen.drawn.wait(5)
    text = screen.getvalue()
    assert text.startswith("\rzdir: waiting for tcp://h:1... 0.")
    # A few sources: the entries received so far, source by source (a paged listing
    # updates them as its pages arrive).
    names = [s.name for s in SOURCES[:2]]
    assert f"zdir: {names[0]} 7, {names[1]} {SOURCES[1].entries} entries... " in text
    width = max(len(part) for part in text.split("\r"))
    assert text.endswith("\r" + " " * width + "\r")


def test_progress_without_a_stream_does_nothing():
    threads = threading.active_count()
    with progress.Progress(None, "tcp://h:1"):
        assert threading.active_count() == threads
