"""The lister on real temporary trees: types, stat columns, chunking, recursion, filters."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from conftest import make_tree
from zdir import lister, namesort
from zdir.errors import ListingError
from zdir.lister import DirListing, Options, split_path
from zdir.chunkframes import name_from_wire

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("open_mode")]


def listed(root, path="", **options):
    listing = DirListing(os.path.realpath(root), path, Options(**options))
    rows = []
    for chunk in listing:
        count = len(chunk.names)
        nothing = [None] * count
        rows.extend(zip(map(name_from_wire, chunk.names), chunk.types,
                        chunk.sizes or nothing, chunk.modes or nothing))
    return sorted(rows), listing


def test_types_sizes_and_modes(tmp_path):
    make_tree(tmp_path, {"f": "12345", "d": {}})
    rows, listing = listed(tmp_path)
    assert [(n, t, s) for n, t, s, _ in rows if n != "d"] == [("f", "f", 5)]
    modes = {n: m for n, _, _, m in rows}
    assert stat.S_ISDIR(modes["d"]) and stat.S_ISREG(modes["f"])
    assert listing.entries == 2 and not listing.truncated


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and fifos")
def test_symlinks_and_others_are_typed_not_followed(tmp_path):
    make_tree(tmp_path, {"target": {"deep": "x"}})
    os.symlink("target", tmp_path / "link")
    os.symlink("missing", tmp_path / "dangling")
    os.mkfifo(tmp_path / "fifo")
    rows, _ = listed(tmp_path, recursive=True)
    types = {n: t for n, t, _, _ in rows}
    assert types == {"dangling": "l", "fifo": "o", "link": "l", "target": "d", "target/deep": "f"}


def test_no_stat_columns_when_not_asked(tmp_path):
    make_tree(tmp_path, {"f": "1", "d": {}})
    listing = DirListing(str(tmp_path.resolve()), "", Options(stat=False))
    (chunk,) = list(listing)
    assert chunk.sizes is None and chunk.mtimes is None and chunk.modes is None
    assert sorted(zip(chunk.names, chunk.types)) == [("d", "d"), ("f", "f")]


def test_chunks_split_large_directories(tmp_path):
    make_tree(tmp_path, {f"n{i:03d}": "" for i in range(25)})
    chunks = list(DirListing(str(tmp_path.resolve()), "", Options(chunk_entries=10)))
    assert [len(c.names) for c in chunks] == [10, 10, 5]


def test_entry_limit_truncates_with_a_code(tmp_path):
    make_tree(tmp_path, {f"n{i}": "" for i in range(10)})
    rows, listing = listed(tmp_path, max_entries=4)
    assert len(rows) == 4 and listing.truncated
    assert listing.warning.code == "limit_exceeded"


def test_recursion_depth_and_relative_names(tmp_path):
    make_tree(tmp_path, {"a": {"b": {"c": {"d": "x"}}}, "top": "t"})
    rows, _ = listed(tmp_path, "a", recursive=True)
    assert [n for n, *_ in rows] == ["b", "b/c", "b/c/d"]
    rows, _ = listed(tmp_path, recursive=True, max_depth=2)
    assert [n for n, *_ in rows] == ["a", "a/b", "top"]


def test_server_depth_limit_marks_truncated(tmp_path):
    make_tree(tmp_path, {"a": {"b": {"c": "x"}}})
    rows, listing = listed(tmp_path, recursive=True, depth_limit=2)
    assert [n for n, *_ in rows] == ["a", "a/b"]
    assert listing.truncated and listing.warning.code == "limit_exceeded"


def test_glob_and_exclude(tmp_path):
    make_tree(tmp_path, {"a.txt": "", "b.log": "", "keep": {"c.txt": ""}, "skip": {"d.txt": ""}})
    rows, _ = listed(tmp_path, recursive=True, glob=("*.txt",), exclude=("skip",))
    assert [n for n, *_ in rows] == ["a.txt", "keep/c.txt"]


def test_hidden_needs_all(tmp_path):
    make_tree(tmp_path, {".h": "", "v": "", ".hd": {"x": ""}})
    assert [n for n, *_ in listed(tmp_path, recursive=True)[0]] == ["v"]
    assert [n for n, *_ in listed(tmp_path, recursive=True, all=True)[0]] == [
        ".h", ".hd", ".hd/x", "v"]


@pytest.mark.parametrize("path, parts", [
    ("", []), (".", []), ("a/./b//c/", ["a", "b", "c"]), ("a/../b", ["b"]),
    (b"a/b", ["a", "b"]), ("%2e%2e", ["%2e%2e"]), ("..%2f", ["..%2f"]),
])
def test_split_path_folds_dots_and_decodes_nothing(path, parts):
    assert split_path(path) == parts


@pytest.mark.parametrize("path, code", [
    ("..", "bad_path"), ("a/../..", "bad_path"), ("/etc", "bad_path"),
    ("\\\\host\\share", "bad_path"), ("C:\\Windows", "bad_path"), ("a\x00b", "bad_path"),
])
def test_split_path_refusals(path, code):
    with pytest.raises(ListingError) as info:
        split_path(path)
    assert info.value.code == code


def test_missing_and_file_paths(tmp_path):
    make_tree(tmp_path, {"f": "x"})
    root = str(tmp_path.resolve())
    for path, code in (("nope", "not_found"), ("f", "not_a_directory"), ("f/x", "not_a_directory")):
        with pytest.raises(ListingError) as info:
            DirListing(root, path)
        assert info.value.code == code


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux allows any bytes in names")
def test_undecodable_names_come_out_as_bytes(tmp_path):
    raw = b"caf\xe9"
    open(os.path.join(os.fsencode(tmp_path), raw), "w").close()
    (chunk,) = list(DirListing(str(tmp_path.resolve()), ""))
    assert chunk.names == [raw]


def walked(root, path="", **options):
    """Names in the order the listing sends them, and the listing."""
    listing = DirListing(os.path.realpath(root), path, Options(**options))
    return [name_from_wire(n) for chunk in listing for n in chunk.names], listing


def test_one_level_comes_whole_in_name_order_in_chunks(tmp_path):
    names = [f"n{i:03d}" for i in range(60)]
    make_tree(tmp_path, {name: "" for name in reversed(names)})
    chunks = list(DirListing(str(tmp_path.resolve()), "", Options(chunk_entries=25)))
    assert [len(c.names) for c in chunks] == [25, 25, 10]
    assert sum((c.names for c in chunks), []) == names


def test_a_subtree_comes_right_after_its_directory(tmp_path):
    make_tree(tmp_path, {"b": "", "a-b": "", "a": {"y": "", "x": {"deep": ""}}, "a.c": ""})
    names, _ = walked(tmp_path, recursive=True)
    # "a/x" before "a-b": components compare first ("a" < "a-b"), unlike plain strings.
    assert names == ["a", "a/x", "a/x/deep", "a/y", "a-b", "a.c", "b"]
    assert names == sorted(names, key=lister.order_key) != sorted(names)


def test_order_key_is_components_and_decodes_wire_bytes():
    assert lister.order_key("a/x") < lister.order_key("a-b") < lister.order_key("a.c")
    assert lister.order_key(b"caf\xe9/x") == ("caf\udce9", "x")
    # surrogate escapes sort as their code points: after U+D7FF, before U+E000
    assert lister.order_key("\ud7ff") < lister.order_key(b"\xe9") < lister.order_key("\ue000")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux allows any bytes in names")
def test_undecodable_names_sort_as_surrogate_escapes(tmp_path):
    for raw in (b"\xed\x9f\xbf", b"\xff", b"\xee\x80\x80", b"z"):  # U+D7FF, U+DCFF, U+E000
        open(os.path.join(os.fsencode(tmp_path), raw), "w").close()
    names, _ = walked(tmp_path)
    assert names == ["z", "\ud7ff", "\udcff", "\ue000"]


def test_a_walk_deeper_than_pythons_recursion_limit(tmp_path):
    depth = sys.getrecursionlimit() + 100  # the recursive walk died at about 490 levels
    chain = [str(tmp_path / "d")]
    for _ in range(depth - 1):  # os.makedirs and shutil.rmtree would recurse themselves
        chain.append(os.path.join(chain[-1], "d"))
    bottom = os.path.join(chain[-1], "bottom")
    try:
        for path in chain:
            os.mkdir(path)
        open(bottom, "w").close()
        names, listing = walked(tmp_path, recursive=True, stat=False, depth_limit=depth + 10)
        assert len(names) == depth + 1 and names[-1].endswith("/d/bottom")
        assert not listing.truncated
        names, listing = walked(tmp_path, recursive=True, stat=False, depth_limit=depth - 1)
        assert len(names) == depth - 1 and listing.truncated
        assert listing.warning.code == "limit_exceeded"
    finally:  # leave nothing pytest's own (recursive) clean-up would choke on
        if os.path.exists(bottom):
            os.unlink(bottom)
        for path in reversed(chain):
            if os.path.isdir(path):
                os.rmdir(path)


def test_the_entry_limit_keeps_the_first_names_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(namesort, "TRIM_SLACK", 0)  # trim while reading, as a huge directory does
    make_tree(tmp_path, {f"n{i:03d}": "" for i in reversed(range(100))})
    names, listing = walked(tmp_path, max_entries=5)
    assert names == [f"n{i:03d}" for i in range(5)] and listing.truncated
    names, listing = walked(tmp_path, max_entries=5, glob=("*7",))
    assert names == [f"n{i:03d}" for i in (7, 17, 27, 37, 47)] and listing.truncated


class StatSpy:
    """Counts every stat the lister could make: os.stat, os.lstat and DirEntry.stat."""

    def __init__(self, monkeypatch):
        self.calls = []
        real_stat, real_lstat, real_scandir = os.stat, os.lstat, os.scandir
        spy = self

        def stat(path, *args, **kwargs):
            spy.calls.append(("stat", path))
            return real_stat(path, *args, **kwargs)

        def lstat(path, *args, **kwargs):
            spy.calls.append(("lstat", path))
            return real_lstat(path, *args, **kwargs)

        class Entry:
            def __init__(self, entry):
                self._entry = entry

            def __getattr__(self, name):
                return getattr(self._entry, name)

            def stat(self, *args, **kwargs):
                spy.calls.append(("entry.stat", self._entry.name))
                return self._entry.stat(*args, **kwargs)

        class Scan:
            def __init__(self, handle):
                self._scan = real_scandir(handle)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._scan.close()

            def __iter__(self):
                return (Entry(entry) for entry in self._scan)

        monkeypatch.setattr(os, "stat", stat)
        monkeypatch.setattr(os, "lstat", lstat)
        monkeypatch.setattr(os, "scandir", Scan)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows' names come with their stat")
def test_no_stat_columns_means_no_stat_calls(tmp_path, monkeypatch):
    make_tree(tmp_path, {"f": "1", "d": {"g": "", "e": {}}, "x.txt": ""})
    os.symlink("d", tmp_path / "link")
    root = str(tmp_path.resolve())
    spy = StatSpy(monkeypatch)
    for options in ({}, {"recursive": True}, {"glob": ("*.txt",)},
                    {"recursive": True, "all": True}):
        rows = [(n, t) for c in DirListing(root, "", Options(stat=False, **options))
                for n, t in zip(c.names, c.types)]
        on_entries = [call for call in spy.calls if call[1] != root]  # by path: isdir(root)
        assert rows and on_entries == [], (options, on_entries)
    assert dict(rows) == {"d": "d", "d/e": "d", "d/g": "f", "f": "f", "link": "l", "x.txt": "f"}
    list(DirListing(root, "", Options(stat=True)))
    assert len([call for call in spy.calls if call[1] != root]) >= 4  # the spy sees them


def test_windows_stat_is_kept_for_a_small_directory_only(tmp_path, monkeypatch):
    """Windows gives each entry's stat with its name: a small directory lists with it, no
    further call; a big one (packed runs) lstats each entry as it lists it, and the same."""
    monkeypatch.setattr(lister, "USE_DIR_FD", False)  # as on Windows
    monkeypatch.setattr(lister, "ON_WINDOWS", True)
    make_tree(tmp_path, {f"n{i:02d}": "x" * i for i in reversed(range(20))})
    root = str(tmp_path.resolve())
    spy = StatSpy(monkeypatch)
    small = list(DirListing(root, "", Options(chunk_entries=7)))
    lstats = [call for call in spy.calls if call[0] == "lstat"]
    assert lstats == [] and len([c for c in spy.calls if c[0] == "entry.stat"]) == 20
    monkeypatch.setattr(namesort, "RUN_ENTRIES", 6)
    spy.calls.clear()
    big = list(DirListing(root, "", Options(chunk_entries=7)))
    assert len([call for call in spy.calls if call[0] == "lstat"]) == 20
    assert big == small and sum(len(c.names) for c in big) == 20
    assert big[0].sizes[:3] == [0, 1, 2]


# -- stat columns read a batch at a time (zdir/lstats.py) ---------------------------------------

def lstat_hook(monkeypatch, before):
    """Calls ``before(name)`` just ahead of each lstat the lister makes (by descriptor or path)."""
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        before(os.path.basename(os.fsdecode(path)))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)


def test_entries_that_vanish_before_their_lstat_keep_their_readdir_type(tmp_path, monkeypatch):
    """In the middle of a batch, at its ends, a directory: gone between readdir and lstat,
    each is listed with its type from readdir and no stat columns; the rest as usual."""
    names = [f"n{i:03d}" for i in range(2 * lister.STAT_BATCH + 10)]
    make_tree(tmp_path, {name: "x" * (i % 7) for i, name in enumerate(names)})
    (tmp_path / "n050-dir").mkdir()
    gone = {"n000", "n050-dir", names[lister.STAT_BATCH - 1], names[lister.STAT_BATCH], "n100"}

    def vanish(name):
        if name in gone:
            path = tmp_path / name
            path.rmdir() if path.is_dir() else path.unlink()

    lstat_hook(monkeypatch, vanish)
    listing = DirListing(str(tmp_path.resolve()), "", Options(recursive=True, chunk_entries=50))
    chunks = list(listing)
    assert all(len(c.names) == 50 for c in chunks[:-1])
    rows = {n: (t, s, m, mt) for c in chunks
            for n, t, s, m, mt in zip(c.names, c.types, c.sizes, c.modes, c.mtimes)}
    assert list(rows) == sorted(names + ["n050-dir"])
    for i, name in enumerate(names):
        if name in gone:
            assert rows[name] == ("f", None, None, None), name
        else:
            assert rows[name][:2] == ("f", i % 7) and stat.S_ISREG(rows[name][2]), name
            assert isinstance(rows[name][3], float)
    assert rows["n050-dir"] == ("d", None, None, None)
    assert listing.truncated and listing.warning.code == "not_found"  # walked into: gone


def test_a_walk_stuck_in_an_lstat_shows_only_whole_entries(tmp_path, monkeypatch):
    """``gathered()`` from another thread while an lstat hangs: entries whose every column
    is written, in order, at most a batch short of the stuck one; none half-added."""
    import threading

    names = [f"n{i:03d}" for i in range(3 * lister.STAT_BATCH)]
    make_tree(tmp_path, {name: "x" for name in names})
    stuck_at = 2 * lister.STAT_BATCH + 5
    stuck, release = threading.Event(), threading.Event()

    def hang(name):
        if name == names[stuck_at]:
            stuck.set()
            release.wait(10)

    lstat_hook(monkeypatch, hang)
    listing = DirListing(str(tmp_path.resolve()), "", Options(targets=True))
    walker = threading.Thread(target=lambda: listing.__setattr__("chunks", list(listing)))
    walker.start()
    try:
        assert stuck.wait(10)
        taken, chunk = listing.gathered()
    finally:
        release.set()
        walker.join(10)
    assert taken == 0 and chunk is not None
    count = len(chunk.names)
    assert stuck_at - lister.STAT_BATCH <= count <= stuck_at
    assert chunk.names == names[:count] and chunk.types == "f" * count
    assert len(chunk.sizes) == len(chunk.mtimes) == len(chunk.modes) == count
    assert chunk.sizes == [1] * count and chunk.targets == [None] * count
    (whole,) = listing.chunks
    assert whole.names == names
