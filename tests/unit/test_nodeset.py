"""Folding source names into ranges, expanding them back, and --source selectors (no sockets)."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zdir.nodeset import MAX_EXPANSION, PatternError, Selector, expand, fold, fold_parts, select

pytestmark = pytest.mark.timeout(60)

# Names as fleets spell them: a prefix, a number (padded or not), maybe a suffix; and some
# with no digits, several digit runs, or odd characters. Not "[],*?": see zdir/nodeset.py.
_TEXT = st.text(alphabet="abnodewx-_.é", max_size=4)
_NUMBER = st.integers(0, 12_000).flatmap(
    lambda n: st.sampled_from([str(n), str(n).zfill(2), str(n).zfill(4), str(n).zfill(6)]))
FLEET_NAME = st.one_of(
    st.builds(lambda p, n, s: p + n + s, _TEXT, _NUMBER, _TEXT),
    st.builds(lambda p, a, m, b: p + a + m + b, _TEXT, _NUMBER, _TEXT, _NUMBER),
    st.text(alphabet="abc-0123456789", min_size=1, max_size=8),
    st.text(min_size=1, max_size=6).filter(lambda s: not set(s) & set("[],*?")),
)
NAMES = st.lists(FLEET_NAME, max_size=60)


@given(NAMES)
def test_expand_undoes_fold(names):
    expanded = expand(fold(names))
    assert set(expanded) == set(names)
    assert len(expanded) == len(set(names))


@given(NAMES, st.randoms(use_true_random=False))
def test_fold_does_not_depend_on_order_or_repeats(names, rng):
    shuffled = names + names[: len(names) // 2]
    rng.shuffle(shuffled)
    assert fold(shuffled) == fold(names)


@given(st.lists(FLEET_NAME, min_size=1, max_size=40), st.data())
def test_a_folded_set_selects_exactly_its_names(names, data):
    names = list(dict.fromkeys(names))
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, min_size=1))
    picked, unused = select([fold(chosen)], names)
    assert set(picked) == set(chosen) and unused == []


@pytest.mark.parametrize("names, folded", [
    ([f"node{i:04d}" for i in range(1, 1001) if i != 499], "node[0001-0498,0500-1000]"),
    (["node0042", "node0777"], "node[0042,0777]"),
    (["node7"], "node7"),
    (["web", "db", "node1", "node2", "node3"], "db,node[1-3],web"),
    # 998 999 1000 are one range when the padded names show the width is 4
    (["n0998", "n0999", "n1000"], "n[0998-1000]"),
    (["n8", "n9", "n10"], "n[8-10]"),
    (["n08", "n09", "n10", "n8"], "n[8,08-10]"),
    (["n01", "n1", "n001"], "n[1,01,001]"),
    (["rack1-n01", "rack1-n02", "rack2-n01"], "rack1-n[01-02],rack2-n01"),
    (["a1.lan", "a2.lan", "a3.wan"], "a[1-2].lan,a3.wan"),
    (["x[1]", "y,z", "x1"], "x1,x[1],y,z"),
    (["n0"], "n0"),
    ([], ""),
])
def test_fold_examples(names, folded):
    assert fold(names) == folded == ",".join(fold_parts(names))


def test_fold_a_thousand_scattered_names_stays_short():
    rng = random.Random(7)
    failed = sorted(rng.sample(range(1, 1001), 10))
    folded = fold(f"node{i:04d}" for i in failed)
    assert folded.startswith("node[") and folded.count(",") == 9
    answered = fold(f"node{i:04d}" for i in range(1, 1001) if i not in failed)
    assert len(answered) < 120


@pytest.mark.parametrize("pattern, names", [
    ("node[1-3]", ["node1", "node2", "node3"]),
    ("node[08-10]", ["node08", "node09", "node10"]),
    ("node[0998-1000]", ["node0998", "node0999", "node1000"]),
    ("r[1-2]n[1,3]", ["r1n1", "r1n3", "r2n1", "r2n3"]),
    ("web,node[2],web", ["web", "node2"]),
    ("a[1-2].lan,b", ["a1.lan", "a2.lan", "b"]),
    ("", []),
])
def test_expand_examples(pattern, names):
    assert expand(pattern) == names


@pytest.mark.parametrize("pattern, why", [
    ("node[1-3", "without ']'"),
    ("node1-3]", "without '['"),
    ("node[3-1]", "reversed"),
    ("node[a-c]", "not a range list"),
    ("node[]", "not a range list"),
    ("node[1-0010]", "mixes paddings"),
    (f"n[1-{MAX_EXPANSION + 1}]", "more than"),
    ("a[1-2000]b[1-2000]", "more than"),
])
def test_expand_refuses_what_it_cannot_read(pattern, why):
    with pytest.raises(PatternError, match=re.escape(why)):
        expand(pattern)


SOURCES = ["server_a", "web1", "web2", "webx", "db1", "node0001", "node0042", "node0100",
           "node0101", "node12", "star*name"]


@pytest.mark.parametrize("selectors, chosen", [
    (["web*"], ["web1", "web2", "webx"]),
    (["node[0001-0100]"], ["node0001", "node0042", "node0100"]),
    (["node[0001-0100]", "db?"], ["db1", "node0001", "node0042", "node0100"]),
    (["web*,db1"], ["web1", "web2", "webx", "db1"]),
    (["web[!0-9]*"], ["webx"]),         # not digits: a glob class
    (["web[12]"], []),                  # digits: a range, so web12
    (["web[1-2]"], ["web1", "web2"]),   # the same as a range or a glob
    (["node[1-3]"], []),                # node12 is not node1, node2 or node3
    (["node[1-3]*"], ["node12"]),       # but it is node1 followed by anything
    (["node*[2]"], ["node0042", "node12"]),  # ... as shell globs say
    (["*[1-3]"], ["web1", "web2", "db1", "node0001", "node0042", "node0101", "node12"]),
    (["n*[0100-0101]"], ["node0100", "node0101"]),
    (["star*name"], ["star*name"]),     # a name is itself, whatever it holds
    (["server_a"], ["server_a"]),
])
def test_selectors(selectors, chosen):
    picked, unused = select(selectors, SOURCES)
    assert sorted(picked) == sorted(chosen)
    assert unused == ([] if chosen else selectors)


def test_select_names_the_selectors_that_chose_nothing():
    picked, unused = select(["web*", "mail*", "node[0500-0600]"], SOURCES)
    assert picked == ["web1", "web2", "webx"]
    assert unused == ["mail*", "node[0500-0600]"]


def test_a_broken_selector_is_an_error():
    with pytest.raises(PatternError):
        Selector("node[5-1]")


def test_an_unclosed_bracket_in_a_selector_is_a_literal_as_in_fnmatch():
    assert Selector("a[b").matches("a[b")
    assert not Selector("a[b").matches("ab")
