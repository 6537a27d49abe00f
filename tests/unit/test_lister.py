"""The lister on real temporary trees: types, stat columns, chunking, recursion, filters."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from conftest import make_tree
from zdir import lister
from zdir.errors import ListingError
from zdir.lister import DirListing, Options, split_path
from zdir.protocol import name_from_wire

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True, params=[True, False], ids=["dir-fd", "by-path"])
def open_mode(request, monkeypatch):
    """Every test twice: with directory descriptors, and by path as on Windows."""
    if request.param and not lister.USE_DIR_FD:
        pytest.skip("this platform has no O_NOFOLLOW directory descriptors")
    monkeypatch.setattr(lister, "USE_DIR_FD", request.param)


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


def test_chunks_come_sorted_by_name_in_runs(tmp_path, monkeypatch):
    names = [f"n{i:03d}" for i in range(60)]
    make_tree(tmp_path, {name: "" for name in reversed(names)})
    monkeypatch.setattr("zdir.lister.SORT_ENTRIES", 25)  # runs of 25, in chunks of 10
    chunks = list(DirListing(str(tmp_path.resolve()), "", Options(chunk_entries=10)))
    assert [len(c.names) for c in chunks] == [10, 10, 5, 10, 10, 5, 10]
    runs = [sum((c.names for c in chunks[i:i + 3]), []) for i in (0, 3)] + [chunks[6].names]
    assert all(run == sorted(run) for run in runs)
    assert sorted(sum(runs, [])) == names
