"""Symlink targets are shown only when their text stays inside the root."""

from __future__ import annotations

import os

import pytest

from zdir.links import confined_target, read_target

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt",
                                reason="POSIX symlinks")


@pytest.mark.parametrize("target, depth, shown", [
    ("notes.txt", 0, True),
    ("docs/guide.md", 0, True),
    ("./notes.txt", 0, True),
    ("../notes.txt", 1, True),           # from a sub-directory, back to the root
    ("sub/../../x", 1, True),             # climbs to the root, not above it
    ("../x", 0, False),                   # above the root
    ("sub/../../x", 0, False),
    ("../../x", 1, False),
    ("/etc/passwd", 3, False),            # absolute: would name the root's place
    ("/", 0, False),
    ("", 0, False),
    ("a\x00b", 0, False),
    ("C:notes", 0, True),                 # a plain name on POSIX
    ("back\\slash", 0, True),
])
def test_confined_target(target, depth, shown):
    assert confined_target(target, depth) == (target if shown else None)


def test_read_target_by_descriptor_and_by_path(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    os.symlink("notes.txt", tmp_path / "latest")
    os.symlink("../../etc", tmp_path / "sub" / "out")
    os.symlink("../notes.txt", tmp_path / "sub" / "up")
    fd = os.open(tmp_path / "sub", os.O_RDONLY)
    try:
        assert read_target("up", fd, 1) == "../notes.txt"
        assert read_target("out", fd, 1) is None
        assert read_target("missing", fd, 1) is None
    finally:
        os.close(fd)
    assert read_target("latest", str(tmp_path), 0) == "notes.txt"
    assert read_target("notes.txt", str(tmp_path), 0) is None  # not a link
    os.symlink(b"caf\xe9", os.fsencode(tmp_path / "odd"))
    assert read_target("odd", str(tmp_path), 0) == "caf\udce9"  # os.fsencode gives the bytes
