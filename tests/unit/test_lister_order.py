"""The walk's order on random trees (hypothesis): component order, and packed runs merged
as one sort would list them; each tree with directory descriptors and by path."""

from __future__ import annotations

import fnmatch
import os
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zdir import lister, namesort
from zdir.chunkframes import name_from_wire
from zdir.lister import DirListing, Options

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("open_mode")]


NAMES = ["a", "b", "a-b", "a.b", "A", "é", "ab", ".h", "a b"]
if sys.platform.startswith("linux"):
    NAMES.append("\udce9")  # the undecodable byte 0xe9, as os.fsdecode gives it
trees = st.recursive(
    st.none(),  # a file
    lambda children: st.dictionaries(st.sampled_from(NAMES), children, max_size=4),
    max_leaves=14,
).filter(lambda tree: isinstance(tree, dict))
listing_options = st.fixed_dictionaries({
    "all": st.booleans(),
    "recursive": st.booleans(),
    "max_depth": st.one_of(st.none(), st.integers(1, 3)),
    "depth_limit": st.integers(1, 4),
    "glob": st.sampled_from([(), ("a*",), ("*b", "é")]),
    "exclude": st.sampled_from([(), ("a",), ("a*", ".h")]),
    "chunk_entries": st.integers(1, 4),
})


def build(base, tree):
    for name, sub in tree.items():
        path = os.path.join(os.fsencode(base), os.fsencode(name))
        if sub is None:
            open(path, "w").close()
        else:
            os.mkdir(path)
            build(os.fsdecode(path), sub)


def expected(tree, options, prefix="", depth=1):
    """What the listing holds, by the documented rules, worked out from the tree itself."""
    truncated = False
    paths = []
    for name, sub in tree.items():
        if not options["all"] and name.startswith("."):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in options["exclude"]):
            continue
        if not options["glob"] or any(fnmatch.fnmatchcase(name, p) for p in options["glob"]):
            paths.append(prefix + name)
        max_depth = options["max_depth"]
        walked_into = options["recursive"] and (max_depth is None or depth < max_depth)
        if isinstance(sub, dict) and walked_into:
            if depth >= options["depth_limit"]:
                truncated = True
                continue
            more, cut = expected(sub, options, prefix + name + "/", depth + 1)
            paths += more
            truncated = truncated or cut
    return paths, truncated


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tree=trees, options=listing_options)
def test_random_trees_come_in_component_order(tree, options):
    with tempfile.TemporaryDirectory() as base:
        build(base, tree)
        listing = DirListing(os.path.realpath(base), "", Options(**options))
        chunks = list(listing)
    names = [name_from_wire(n) for chunk in chunks for n in chunk.names]
    paths, truncated = expected(tree, options)
    assert names == sorted(paths, key=lister.order_key)
    assert listing.entries == len(names) and listing.truncated == truncated
    assert all(len(c.names) == options["chunk_entries"] for c in chunks[:-1])
    assert all(0 < len(c.names) <= options["chunk_entries"] for c in chunks)


# -- big directories: sorted in packed runs, merged as they are listed --------------------------

wide_trees = st.recursive(
    st.none(),
    lambda children: st.dictionaries(st.sampled_from(NAMES + [f"n{i}" for i in range(10)]),
                                     children, max_size=12),
    max_leaves=30,
).filter(lambda tree: isinstance(tree, dict))
run_sizes = st.fixed_dictionaries({
    "RUN_ENTRIES": st.integers(1, 5),
    "BLOCK_ENTRIES": st.integers(1, 3),
    "TRIM_SLACK": st.integers(0, 2),
})


def chunks_of(base, options):
    listing = DirListing(os.path.realpath(base), "", Options(**options))
    chunks = list(listing)
    warning = listing.warning.code if listing.warning else None
    return chunks, (listing.entries, listing.truncated, warning, listing.shared_inodes)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tree=wide_trees, options=listing_options, stat_columns=st.booleans(),
       max_entries=st.integers(1, 40), sizes=run_sizes)
def test_merged_runs_list_exactly_what_one_sort_lists(tree, options, stat_columns, max_entries,
                                                      sizes):
    options = dict(options, stat=stat_columns, max_entries=max_entries)
    with tempfile.TemporaryDirectory() as base:
        build(base, tree)
        whole = chunks_of(base, options)  # every directory here fits in one run
        with pytest.MonkeyPatch.context() as patch:
            for name, value in sizes.items():
                patch.setattr(namesort, name, value)
            merged = chunks_of(base, options)
    assert merged == whole
    names = [name_from_wire(n) for chunk in merged[0] for n in chunk.names]
    paths, _ = expected(tree, options)
    assert names == sorted(paths, key=lister.order_key)[:max_entries]
