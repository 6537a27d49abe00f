"""The listing cache found by path, as the node's loop asks it: no file-system call, never stale.

``ListingCache.lookup`` answers from memory only, so a hung file system cannot
stall the loop; it must still see every change made before it is asked, whether
to the directory or to any directory on the way to it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import pytest

from conftest import make_tree
from zdir import watch
from zdir.cache import Cached, ListingCache
from zdir.lister import DirListing, Options, split_path
from zdir.chunkframes import encode_chunk

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(watch.Inotify.open() is None, reason="needs Linux inotify")]

OPTIONS = Options()


@pytest.fixture
def cache():
    kept = ListingCache(1 << 26, stat_ttl=3.0)
    yield kept
    kept.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = make_tree(tmp_path / "root", {"a": "1", "sub": {"s": "12", "deeper": {"d": ""}}})
    return Path(os.path.realpath(made))


def listed(cache: ListingCache, root: Path, path: str) -> List[bytes]:
    """List PATH through the cache as a worker does, so that it is kept and indexed."""
    listing = DirListing(str(root), path, OPTIONS)
    return list(cache.frames(listing, lambda chunk: encode_chunk("t", chunk),
                             tuple(split_path(path))))


def lookup(cache: ListingCache, path: str) -> Optional[Cached]:
    return cache.lookup(tuple(split_path(path)), OPTIONS)


def test_a_kept_listing_is_found_by_path_without_touching_the_file_system(
        cache, root, monkeypatch):
    frames = listed(cache, root, "sub/deeper")
    listed(cache, root, "sub/deeper")

    def hung(*args, **kwargs):
        raise AssertionError("a file-system call in the loop")

    with monkeypatch.context() as patched:
        for name in ("stat", "lstat", "fstat", "open", "scandir", "listdir"):
            patched.setattr(os, name, hung)
        found = lookup(cache, "./sub//deeper/")
    assert found is not None and list(found.chunks) == frames and found.entries == 1


CHANGES = {
    "write in it": lambda root: (root / "sub" / "s").write_text("more"),
    "create in it": lambda root: (root / "sub" / "new").write_text(""),
    "chmod in it": lambda root: os.chmod(root / "sub" / "s", 0o600),
    "it replaced": lambda root: (os.rename(root / "sub", root / "old"), os.mkdir(root / "sub")),
    "its parent replaced": lambda root: (os.rename(root, root.with_name("was")),
                                         make_tree(root, {"sub": {"s": "12"}})),
    "its parent chmod-ed": lambda root: os.chmod(root, 0o700),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_on_the_way_or_in_it_makes_the_loop_hand_it_to_a_worker(
        cache, root, change):
    listed(cache, root, "sub")
    assert lookup(cache, "sub") is not None
    CHANGES[change](root)
    assert lookup(cache, "sub") is None
    listed(cache, root, "sub")  # listed afresh: found again
    assert lookup(cache, "sub") is not None


def test_writes_beside_the_path_leave_it_found(cache, root, tmp_path):
    """A busy file (a log, say) in a directory on the way does not change where it leads."""
    with open(tmp_path / "server.log", "a") as log:
        listed(cache, root, "sub")
        for _ in range(3):
            log.write("a line\n")
            log.flush()
            assert lookup(cache, "sub") is not None


def test_a_path_through_a_symlink_is_not_found_by_path(cache, root):
    os.symlink("sub", root / "link")
    listed(cache, root, "link")
    assert listed(cache, root, "sub")  # kept: the same directory, by its own path
    assert lookup(cache, "sub") is not None and lookup(cache, "link") is None


def test_a_worker_holding_the_cache_means_asking_a_worker(cache, root):
    """A worker may hold the lock inside a file-system call: the loop never waits for it."""
    listed(cache, root, "sub")
    with cache._lock:
        assert lookup(cache, "sub") is None
    assert lookup(cache, "sub") is not None


def test_the_root_itself_and_an_empty_cache(root):
    without = ListingCache(0, stat_ttl=3.0)
    try:
        listed(without, root, "")
        assert lookup(without, "") is None
    finally:
        without.close()
    kept = ListingCache(1 << 20, stat_ttl=3.0)
    try:
        listed(kept, root, "")
        assert lookup(kept, ".") is not None and lookup(kept, "sub") is None
    finally:
        kept.close()


def test_only_the_same_kind_of_listing_is_found(cache, root):
    """Recursive and resumed listings are never kept: a flat one is no answer to them."""
    listed(cache, root, "sub")
    for other in (OPTIONS._replace(recursive=True), OPTIONS._replace(after=("s",)),
                  OPTIONS._replace(stat=False), OPTIONS._replace(all=True)):
        assert cache.lookup(("sub",), other) is None
    assert cache.lookup(("sub",), OPTIONS) is not None
