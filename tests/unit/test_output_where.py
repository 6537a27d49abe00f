"""Plain output says where a name lives when several sources have it; -l shows link targets."""

from __future__ import annotations

import io
import stat
from typing import Optional

from zdir import longformat, output
from zdir.entries import Entries, Entry
from zdir.output import Style
from zdir.protocol import SourceStatus

FILE, DIR = stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755


def sources(*names: str, entries: int = 1):
    return [SourceStatus(name, True, entries=entries) for name in names]


def plain(rows, statuses=(), **kwargs) -> list:
    out = io.StringIO()
    output.write_plain(rows, out, sources=statuses, **kwargs)
    return out.getvalue().splitlines()


ROWS = [Entry("README.txt", "file", 1, 1.0, FILE, "server_a"),
        Entry("README.txt", "file", 2, 1.0, FILE, "server_b"),
        Entry("data.csv", "file", 3, 1.0, FILE, "server_b"),
        Entry("docs", "dir", 4, 1.0, DIR, "server_a"),
        Entry("docs", "dir", 4, 1.0, DIR, "server_b")]


def test_a_name_on_several_sources_is_printed_once_with_them():
    for rows in (ROWS, Entries.from_entries(ROWS), iter(ROWS)):
        assert plain(rows, sources("server_a", "server_b")) == [
            "README.txt  (server_a, server_b)", "data.csv", "docs  (server_a, server_b)"]


def test_minus_one_prints_each_name_once_bare():
    assert plain(ROWS, sources("server_a", "server_b"), where=False) == [
        "README.txt", "data.csv", "docs"]


def test_sources_follow_the_reply_order_whatever_the_entry_order():
    rows = list(reversed(ROWS))  # -r
    assert plain(rows, sources("server_a", "server_b"))[0] == "docs  (server_a, server_b)"


def test_one_source_with_entries_streams_bare_names():
    statuses = [*sources("server_a"), SourceStatus("server_b", False, entries=0)]
    rows = [Entry("x", "file", 1, 1.0, FILE, "server_a")] * 2  # not grouped: as they come
    assert plain(iter(rows), statuses) == ["x", "x"]


def test_a_fleet_is_folded():
    names = [f"node{i:04d}" for i in range(1, 21)]
    rows = [Entry("x", "file", 1, 1.0, FILE, name) for name in names]
    assert plain(rows, sources(*names)) == ["x  (node[0001-0020])"]


def test_classify_and_escapes_apply_to_the_name():
    rows = [Entry("a\nb", "dir", 1, 1.0, DIR, "s1"), Entry("a\nb", "dir", 1, 1.0, DIR, "s2")]
    out = io.StringIO()
    output.write_plain(rows, out, Style(classify=True), sources=sources("s1", "s2"))
    assert out.getvalue() == "a\\nb/  (s1, s2)\n"


def linked(name: str, target: Optional[str]) -> Entry:
    """A symlink entry as the client gives it when targets were asked for."""
    return Entry(name, "symlink", 9, 1.0, stat.S_IFLNK | 0o777, "a", target)


def test_long_shows_a_known_target_as_ls_does():
    rows = [linked("latest", "notes.txt"), linked("out", None), linked("odd", "x\ty")]
    out = io.StringIO()
    longformat.write_long(rows, out, Style(time_style="long-iso", classify=True))
    ends = [line.split(" a ", 1)[1] for line in out.getvalue().splitlines()]
    assert ends == ["latest -> notes.txt", "out@", "odd -> x\\ty"]
