"""A relay whose token cannot hold every upstream's position: those that do not fit end, named.

A token is at most 32 KiB (docs/protocol.md, *Pages*). Nine upstreams, each standing
at a path of about 3.8 KB after the first page, would need more: the relay ends the
longest one in that page with ``limit_exceeded`` and goes on with the others.
"""

from __future__ import annotations

import pytest

from conftest import make_tree
from zdir import protocol
from zdir.client import Client

pytestmark = pytest.mark.timeout(120)

UPSTREAMS = 9
LEVEL = "d" * 250  # a directory name near the longest most file systems allow
DEPTH = 15  # a position of 15 levels: about 3.8 KB, well under PATH_MAX with tmp_path


def test_upstreams_whose_positions_do_not_fit_in_the_token_end_as_named_failures(
        cluster, tmp_path):
    upstreams = []
    for index in range(UPSTREAMS):
        root = make_tree(tmp_path / f"b{index}", {"z": "x"})
        root.joinpath(*[LEVEL] * DEPTH).mkdir(parents=True)
        upstreams.append(cluster.b(root, "--name", f"b{index}").endpoint)
    a = cluster.a(make_tree(tmp_path / "a", {}), *upstreams)

    with Client(a.endpoint) as client:
        pages = client.stream(recursive=True, stat=False, page_entries=DEPTH)
        entries = [(e.source, e.name) for e in pages]
    assert pages.header.token is not None and len(pages.header.token) <= protocol.MAX_TOKEN_BYTES
    cut = [s for s in pages.sources if s.code == "limit_exceeded"]
    assert len(cut) == 1 and cut[0].truncated and cut[0].entries == DEPTH
    assert "did not fit in the page token" in cut[0].error["message"]
    whole = [s for s in pages.sources if s.name.startswith("b") and s not in cut]
    assert len(whole) == UPSTREAMS - 1 and all(not s.failed and s.entries == DEPTH + 1
                                               for s in whole)
    for status in whole:  # every entry of the others, the cut one's first page
        assert [n for source, n in entries if source == status.name][-1] == "z"
    assert sum(1 for source, _ in entries if source == cut[0].name) == DEPTH
