"""Two upstreams with the same name (both started with the default): two sources, in order."""

from __future__ import annotations

import pytest

from conftest import make_tree, run_client
from zdir.client import Client

pytestmark = pytest.mark.timeout(60)


def test_same_named_upstreams_are_told_apart_and_merged_in_order(cluster, tmp_path):
    evens = cluster.b(make_tree(tmp_path / "b1", {f"x{i:02}": "x" for i in range(0, 30, 2)}))
    odds = cluster.b(make_tree(tmp_path / "b2", {f"x{i:02}": "x" for i in range(1, 30, 2)}))
    assert evens.name == odds.name == "server_b"
    a = cluster.a(make_tree(tmp_path / "a", {}), evens.endpoint, odds.endpoint)
    second = "server_b@" + odds.endpoint.split("://")[1]
    with Client(a.endpoint) as client:
        pages = client.stream(stat=False, page_entries=4)  # paged, merged: as the CLI does
        entries = [(e.name, e.source) for e in pages]
        assert [s.name for s in pages.sources] == ["server_a", "server_b", second]
        assert [name for name, _ in entries] == [f"x{i:02}" for i in range(30)]
        assert all((source == "server_b") == (int(name[1:]) % 2 == 0)
                   for name, source in entries)
        again = client.list(stat=False)  # and the same names in the next listing
        assert [s.name for s in again.sources] == ["server_a", "server_b", second]
    done = run_client("--server", a.endpoint, "--ping")
    assert done.returncode == 0 and second.encode() in done.stdout
