"""Confinement to the root under attack: hostile symlinks, races, hostile paths, and properties.

Every path is either refused with one of the documented refusal codes
(``protocol.REFUSAL_CODES``) or listed from a directory that physically lives
inside the root. The outside tree holds marker names that must never be listed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zdir import confine, globs, lister
from zdir.errors import ListingError
from zdir.lister import DirListing, Options
from zdir.chunkframes import name_from_wire
from zdir.protocol import REFUSAL_CODES

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX symlinks and file names"),
]

MARKER = "OUTSIDE-MARKER"
LINUX = sys.platform.startswith("linux")


def make_world(base: str) -> Tuple[str, str]:
    """``base/root`` (to serve, with ``d/e/f``) and ``base/outside`` (never to be listed)."""
    root = os.path.join(base, "root")
    outside = os.path.join(base, "outside")
    os.makedirs(os.path.join(root, "d", "e"))
    open(os.path.join(root, "d", "e", "f"), "w").close()
    os.makedirs(os.path.join(outside, "deep"))
    open(os.path.join(outside, MARKER), "w").close()
    open(os.path.join(outside, "deep", MARKER + "-deep"), "w").close()
    return root, outside


@pytest.fixture
def world(tmp_path):
    return make_world(os.path.realpath(tmp_path))


def names_of(listing: DirListing) -> List[str]:
    return [name_from_wire(n) for chunk in listing for n in chunk.names]


def refusal(root: str, path, **options) -> str:
    with pytest.raises(ListingError) as info:
        names_of(DirListing(root, path, Options(**options)))
    assert info.value.code in REFUSAL_CODES
    return info.value.code


# -- hostile trees ----------------------------------------------------------------------------

@pytest.mark.parametrize("links, path, code", [
    ({"slash": "/"}, "slash", "outside_root"),
    ({"slash": "/"}, "slash/etc", "outside_root"),
    ({"up": ".."}, "up", "outside_root"),
    ({"loop1": "loop2", "loop2": "loop1"}, "loop1", "symlink_loop"),
    ({"self": "self/x"}, "self", "symlink_loop"),
    ({"deep": "d/e/deeper", "d/e/deeper": "../../.."}, "deep", "outside_root"),
    # a chain that stays inside on its first step and leaves on its second
    ({"first": "second", "second": "../outside"}, "first", "outside_root"),
    ({"first": "d/second", "d/second": "../../outside/deep"}, "first", "outside_root"),
    ({"abs": "{outside}"}, "abs", "outside_root"),
    # absolute, textually under the root, but '..' climbs out
    ({"sneaky": "{root}/../outside"}, "sneaky", "outside_root"),
    ({"updown": "d/e/../../.."}, "updown", "outside_root"),
    ({"dangling": "d/nothing"}, "dangling", "not_found"),
    ({"throughfile": "d/e/f/x"}, "throughfile", "not_a_directory"),
])
def test_hostile_symlinks_are_refused(world, links, path, code):
    root, outside = world
    for name, target in links.items():
        os.symlink(target.format(root=root, outside=outside), os.path.join(root, name))
    assert refusal(root, path) == code


def test_symlinks_that_stay_inside_are_followed_by_hand(world):
    root, _ = world
    os.symlink("d/e", os.path.join(root, "rel"))
    os.symlink(os.path.join(root, "d"), os.path.join(root, "abs"))
    os.symlink("../d/e", os.path.join(root, "d", "back"))
    assert names_of(DirListing(root, "rel")) == ["f"]
    assert sorted(names_of(DirListing(root, "abs"))) == ["back", "e"]
    assert names_of(DirListing(root, "d/back")) == ["f"]


def test_recursion_lists_symlinks_but_never_walks_them(world):
    root, outside = world
    os.symlink(outside, os.path.join(root, "escape"))
    os.symlink("/", os.path.join(root, "d", "slash"))
    names = names_of(DirListing(root, "", Options(recursive=True, all=True)))
    assert sorted(names) == ["d", "d/e", "d/e/f", "d/slash", "escape"]


# -- hostile paths ----------------------------------------------------------------------------

@pytest.mark.parametrize("literal", [
    "%2e%2e", "%2E%2E", "..%2f", "%2e%2e%2f", "..%5c", "..\\", "...", " ..", ".. ",
    "\u2024\u2024",  # ONE DOT LEADER, twice
    "\uff0e\uff0e",  # FULLWIDTH FULL STOP, twice
    "\u0085..", "..\u200b",
])
def test_encoded_and_lookalike_dots_are_literal_names(world, literal):
    root, _ = world
    assert refusal(root, literal) == "not_found"  # looked up as itself, not decoded
    os.mkdir(os.path.join(root, literal))
    open(os.path.join(root, literal, "inside"), "w").close()
    assert names_of(DirListing(root, literal)) == ["inside"]


@pytest.mark.parametrize("path", [
    "a\x00b", "\x00", "d/\x00/..", b"d\x00", "x" * 300, "d/" + "x" * 300, "a/" * 2049,
    b"d/" * 2049, "\ud800", "/", "/etc", "//d", "..", "d/../..", "d/e/../../..",
])
def test_hostile_paths_are_refused_as_bad_path(world, path):
    root, _ = world
    assert refusal(root, path) == "bad_path"


@pytest.mark.skipif(not LINUX, reason="Linux allows any bytes in a name")
def test_non_utf8_bytes_are_a_literal_name(world):
    root, _ = world
    raw = b"caf\xe9\xff"
    assert refusal(root, raw) == "not_found"
    os.mkdir(os.path.join(os.fsencode(root), raw))
    open(os.path.join(os.fsencode(root), raw, b"in"), "w").close()
    assert names_of(DirListing(root, raw)) == ["in"]
    assert names_of(DirListing(root, os.fsdecode(raw))) == ["in"]  # the surrogate form too


def test_long_glob_patterns_are_a_limit_not_a_memory_leak(world):
    root, _ = world
    too_long = "x" * (globs.MAX_PATTERN_CHARS + 1)
    for options in ({"glob": (too_long,)}, {"exclude": ("*", too_long)}):
        with pytest.raises(ListingError) as info:
            DirListing(root, "", Options(**options))
        assert info.value.code == "limit_exceeded"
    longest = "d" * globs.MAX_PATTERN_CHARS
    assert names_of(DirListing(root, "", Options(glob=(longest, "d")))) == ["d"]


# -- races: a directory swapped for a symlink between the check and the listing ---------------

def swap_for_symlink(path: str, target: str) -> None:
    """What an attacker with write access inside the root does, at the worst moment."""
    os.rename(path, path + ".orig")
    os.symlink(target, path)


needs_dir_fd = pytest.mark.skipif(not lister.USE_DIR_FD, reason="needs O_NOFOLLOW and dir fds")


@needs_dir_fd
@pytest.mark.parametrize("path, swapped", [("d", "d"), ("d/e", "d/e"), ("d/e", "d")])
def test_swap_after_the_checks_is_refused_by_o_nofollow(world, monkeypatch, path, swapped):
    root, outside = world
    real_open_step = confine.open_step

    def open_step(name: str, dir_fd: int) -> int:
        if name == os.path.basename(swapped) and not os.path.islink(os.path.join(root, swapped)):
            swap_for_symlink(os.path.join(root, swapped), outside)  # resolve() already passed
        return real_open_step(name, dir_fd)

    monkeypatch.setattr(confine, "open_step", open_step)
    with pytest.raises(ListingError) as info:
        DirListing(root, path)
    assert info.value.code == "outside_root"
    assert "symlink" in info.value.message


@needs_dir_fd
def test_swap_of_a_parent_already_opened_keeps_to_the_real_directory(world, monkeypatch):
    root, outside = world
    real_open_step = confine.open_step

    def open_step(name: str, dir_fd: int) -> int:
        if name == "e":  # 'd' is open: swapping it now cannot redirect us
            swap_for_symlink(os.path.join(root, "d"), outside)
        return real_open_step(name, dir_fd)

    monkeypatch.setattr(confine, "open_step", open_step)
    assert names_of(DirListing(root, "d/e")) == ["f"]


@needs_dir_fd
def test_swap_during_a_recursive_walk_is_skipped_and_reported(world, monkeypatch):
    root, outside = world
    real_child = DirListing._child

    def child(self, frame, name, gathered):
        if name == "e":  # seen as a directory by scandir; a symlink by the time we open it
            swap_for_symlink(os.path.join(root, "d", "e"), outside)
        return real_child(self, frame, name, gathered)

    monkeypatch.setattr(DirListing, "_child", child)
    listing = DirListing(root, "", Options(recursive=True))
    names = names_of(listing)
    assert not any(MARKER in n for n in names)
    assert names == ["d", "d/e"]
    assert listing.truncated and listing.warning.code in REFUSAL_CODES


@needs_dir_fd
def test_resolve_rechecks_what_it_resolved(world, monkeypatch):
    """A swap between resolve() and the realpath re-check is caught by the re-check."""
    root, outside = world
    real_resolve = lister.resolve

    def resolve(root_: str, parts):
        resolved = real_resolve(root_, parts)
        swap_for_symlink(os.path.join(root, "d"), outside)
        return resolved

    monkeypatch.setattr(lister, "resolve", resolve)
    assert refusal(root, "d") == "outside_root"


SWAPPER = r"""
import ctypes, os, sys, time
a, b, seconds = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2]), float(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
exchange = getattr(libc, "renameat2", None)  # glibc >= 2.28; atomic, so the race is tight
AT_FDCWD, RENAME_EXCHANGE = -100, 2
print("swapping", flush=True)
swaps, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    if exchange is None or exchange(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        os.rename(a, a + b".x"); os.rename(b, a); os.rename(a + b".x", b)
    swaps += 1
print(swaps, flush=True)
"""
SWAP_SECONDS = 3.0


@pytest.mark.parametrize("dir_fd", [True, False], ids=["dir-fd", "by-path"])
def test_a_real_swap_race_is_refused_never_internal(world, monkeypatch, dir_fd):
    """Another process swaps 'd' for a symlink (to outside) and back, as fast as it can.

    Every request is listed from the real 'd' or refused as outside_root or
    not_found; an OSError (the node's ``internal``) is the bug: realpath meets a
    component that was a symlink at its lstat and a directory at its readlink.
    """
    if dir_fd and not lister.USE_DIR_FD:
        pytest.skip("this platform has no O_NOFOLLOW directory descriptors")
    monkeypatch.setattr(lister, "USE_DIR_FD", dir_fd)
    root, outside = world
    os.symlink(outside, os.path.join(root, "swap"))
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, os.path.join(root, "d"), os.path.join(root, "swap"),
         str(SWAP_SECONDS)], stdout=subprocess.PIPE, text=True)
    outcomes: Counter = Counter()
    leaked: List[str] = []
    try:
        assert swapper.stdout.readline() == "swapping\n"
        while swapper.poll() is None:
            try:
                names = names_of(DirListing(root, "d", Options(all=True)))
            except ListingError as exc:
                outcomes[exc.code] += 1
                continue
            except OSError as exc:
                outcomes[f"internal: {exc!r}"] += 1
                continue
            outcomes["listed"] += 1
            leaked.extend(name for name in names if name != "e")
        swaps = int(swapper.stdout.readline())
    finally:
        swapper.kill()
        swapper.wait()
    assert swaps > 1000 and sum(outcomes.values()) > 100, (swaps, outcomes)
    assert set(outcomes) <= {"listed", "outside_root", "not_found"}, outcomes
    if dir_fd:  # by path (Windows) the open follows a symlink planted after the checks
        assert not leaked, leaked[:5]


# -- properties over generated trees and paths ------------------------------------------------

NAMES = ["a", "b", ".h", "%2e%2e", "..%2f", "\u2024\u2024", "\uff0e\uff0e", "...", "x y"]
TARGETS = [
    "/", ".", "..", "../..", "../outside", "../../outside", "../outside/deep", "{outside}",
    "{outside}/deep", "{root}", "{root}/a", "{root}/../outside", "{root}/a/../..", "a", "a/b",
    "b/../..", "a/../b", "./a", "b", ".h", ".h/../..", "%2e%2e/..", "a/b/../../..", "x y/a",
]
COMPONENTS = NAMES + ["..", ".", "", "outside", "deep", "root", MARKER, "a\x00", "x" * 300]

nodes = st.lists(
    st.tuples(
        st.integers(0, 30),  # parent: an index into the directories made so far
        st.sampled_from(NAMES),
        st.sampled_from(["dir", "dir", "link", "link", "file"]),
        st.sampled_from(TARGETS),
    ),
    max_size=14,
)
str_paths = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    st.sampled_from(["", "", "", "/", "./", "\\"]),
    st.lists(st.sampled_from(COMPONENTS), max_size=6),
    st.sampled_from(["", "/", "/."]),
)
paths = st.one_of(
    str_paths,
    str_paths.map(lambda p: p.encode("utf-8", "surrogatepass")),
    st.text(max_size=40),
    st.binary(max_size=40),
)


def build_tree(root: str, outside: str, spec) -> List[str]:
    """Make the generated tree; return every path made, relative to the root."""
    directories = [root]
    made = []
    for parent, name, kind, target in spec:
        path = os.path.join(directories[parent % len(directories)], name)
        if os.path.lexists(path):
            continue
        if kind == "dir":
            os.mkdir(path)
            directories.append(path)
        elif kind == "file":
            open(path, "w").close()
        else:
            os.symlink(target.format(root=root, outside=outside), path)
        made.append(os.path.relpath(path, root))
    return made


def paths_into(made: List[str]):
    """Paths that start with something that exists (often a symlink), then wander off."""
    tails = st.lists(st.sampled_from(NAMES + ["..", "..", "."]), max_size=2)
    return st.builds(lambda head, tail: "/".join([head, *tail]), st.sampled_from(made), tails)


def opened_directory(listing: DirListing) -> str:
    """Where the listing's directory really is, asked of the kernel, not of our code."""
    return os.readlink(f"/proc/self/fd/{listing._fd}")


def inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=nodes, data=st.data(), recursive=st.booleans())
def test_any_path_is_refused_or_listed_from_inside(spec, data, recursive):
    with tempfile.TemporaryDirectory() as base:
        root, outside = make_world(os.path.realpath(base))
        made = build_tree(root, outside, spec)
        into = paths_into(made) if made else paths
        path = data.draw(st.one_of(paths, into, into), label="path")
        try:
            listing = DirListing(root, path, Options(all=True, recursive=recursive))
            where = opened_directory(listing) if LINUX and listing._fd is not None else None
            names = names_of(listing)
        except ListingError as exc:
            assert exc.code in REFUSAL_CODES, exc
            return
        if where is not None:
            assert inside(where, root), where
            for name in names:
                assert os.path.lexists(os.path.join(where, name)), name
        assert not any(MARKER in name for name in names)
        if listing.warning is not None:
            assert listing.warning.code in REFUSAL_CODES | {"limit_exceeded"}
