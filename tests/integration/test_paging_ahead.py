"""A relay asks for its upstream's next page before its client does (issue 12, every hop).

Real processes: B's request log (one line per request, with its entry count) shows
what A asked it and when. Pages are asked one at a time here, so that what A asks
for between two of them can only be A's own doing.
"""

from __future__ import annotations

import re

import pytest

from conftest import make_tree, wait_until
from zdir.client import Client

pytestmark = pytest.mark.timeout(60)

LIST_LINE = re.compile(r" INFO list '' sources=1 entries=(\d+) status=ok ")


def entries_per_request(server) -> list:
    return [int(m[1]) for m in map(LIST_LINE.search, server.log().splitlines()) if m]


def test_the_next_page_is_asked_for_before_the_client_asks_and_used_when_it_does(
        cluster, tmp_path):
    a_root = make_tree(tmp_path / "a", {})
    b_root = make_tree(tmp_path / "b", {f"n{i:02}": "x" for i in range(25)})
    b = cluster.b(b_root)
    a = cluster.a(a_root, b.endpoint)
    with Client(a.endpoint) as client:
        first = client.send("list", "", stat=False, page_entries=10, horizon="")
        assert [s.entries for s in first.header.sources] == [0, 10]
        # Nobody has asked for page 2, yet B is asked for it: by A.
        assert wait_until(lambda: len(entries_per_request(b)) == 2)
        assert entries_per_request(b) == [10, 10]

        second = client.send("list", "", stat=False, page_entries=10,
                             token=first.header.token)
        assert [e.name for e in second] == [f"n{i:02}" for i in range(10, 20)]
        # A answered page 2 from what it had, then asked for page 3 (5 entries): had it
        # asked B for page 2 again, B's third request would have had 10.
        assert wait_until(lambda: len(entries_per_request(b)) == 3)
        assert entries_per_request(b) == [10, 10, 5]

        third = client.send("list", "", stat=False, page_entries=10,
                            token=second.header.token)
        assert [e.name for e in third] == [f"n{i:02}" for i in range(20, 25)]
        assert third.header.token is None
    assert entries_per_request(b) == [10, 10, 5], "nothing is asked after the last page"


def test_a_page_fetched_ahead_for_a_source_the_client_holds_back_waits_at_the_relay(
        cluster, tmp_path):
    # A's own names sort before B's: after page 1 the client holds B back until A's
    # own source catches up, and B's page fetched ahead is kept, not asked for again.
    a_root = make_tree(tmp_path / "a", {f"a{i:02}": "x" for i in range(30)})
    b_root = make_tree(tmp_path / "b", {f"b{i:02}": "x" for i in range(25)})
    b = cluster.b(b_root)
    a = cluster.a(a_root, b.endpoint)
    with Client(a.endpoint) as client:
        names = [e.name for e in client.stream(stat=False, page_entries=10)]
    assert names == sorted(names) and len(names) == 55
    # B is asked for each of its 3 pages once, each before the client wanted it, and
    # never while the client held it back: A answered "nothing yet" for it meanwhile.
    assert entries_per_request(b) == [10, 10, 5]
