"""Paged listings across real processes (issue 12): pages concatenate to the listing, in order.

One source, and three sources across two relays; names created and deleted between
pages; a source restarted between pages; forged tokens and tokens from elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import unused_tcp_endpoint
from zdir import tokens
from zdir.client import Client
from zdir.errors import Refused
from zdir.lister import order_key

pytestmark = pytest.mark.timeout(300)

NAME = st.sampled_from(["a", "a-b", "a.b", "ab", "b", "é", "z", ".h", "a b"])
TREE = st.recursive(st.just("file"),
                    lambda inner: st.dictionaries(NAME, inner, max_size=4), max_leaves=20)
TREES = st.dictionaries(NAME, TREE, max_size=5)
PAGES = st.sampled_from([1, 2, 3, 7, 1000])
EXAMPLES = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def build(root: Path, tree) -> None:
    for name, content in tree.items():
        if isinstance(content, dict):
            (root / name).mkdir()
            build(root / name, content)
        else:
            (root / name).write_text("x")


def refill(root: Path, tree) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    build(root, tree)


def in_order(client: Client, **options) -> list:
    """The unpaged listing, in the documented order: by order_key, then by source."""
    listing = client.list(stat=False, **options)
    rank = {s.name: i for i, s in enumerate(listing.sources)}
    return sorted(((e.name, e.source) for e in listing.entries),
                  key=lambda pair: (order_key(pair[0]), rank[pair[1]]))


def paged(client: Client, page: int, **options) -> list:
    return [(e.name, e.source) for e in client.stream(stat=False, page_entries=page, **options)]


def test_one_source_pages_concatenate_to_the_listing(cluster, tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    b = cluster.b(root, "--name", "b")

    @EXAMPLES
    @given(tree=TREES, page=PAGES, recursive=st.booleans(), hidden=st.booleans())
    def check(tree, page, recursive, hidden):
        refill(root, tree)
        with Client(b.endpoint, timeout=20) as client:
            options = dict(recursive=recursive, all=hidden)
            assert paged(client, page, **options) == in_order(client, **options)

    check()


def test_three_sources_across_two_relays(cluster, tmp_path):
    """The client asks A0 (a relay) whose upstream A1 (a relay) has B behind it."""
    roots = [tmp_path / name for name in ("a0", "a1", "b")]
    for root in roots:
        root.mkdir()
    b = cluster.b(roots[2], "--name", "b")
    a1 = cluster.a(roots[1], b.endpoint, args=["--name", "a1"])
    a0 = cluster.a(roots[0], a1.endpoint, args=["--name", "a0"])

    @EXAMPLES
    @given(trees=st.tuples(TREES, TREES, TREES), page=PAGES, recursive=st.booleans())
    def check(trees, page, recursive):
        for root, tree in zip(roots, trees):
            refill(root, tree)
        with Client(a0.endpoint, timeout=20) as client:
            expected = in_order(client, recursive=recursive)
            pages = client.stream(stat=False, recursive=recursive, page_entries=page)
            assert [(e.name, e.source) for e in pages] == expected
            assert [s.name for s in pages.sources] == ["a0", "a1", "b"]
            assert all(s.next is None and not s.failed for s in pages.sources)

    check()


def ask(client: Client, path="", **options):
    """One page, by hand: (names, header)."""
    reply = client.send("list", path, stat=False, **options)
    return [e.name for e in reply], reply.header


def pages_by_hand(client: Client, page: int, between=lambda number: None, **options) -> list:
    names, header = ask(client, page_entries=page, **options)
    number = 1
    while header.token is not None:
        between(number)
        more, header = ask(client, page_entries=page, token=header.token, **options)
        names += more
        number += 1
    return names


def test_churn_between_pages_loses_and_repeats_nothing_that_stayed(cluster, tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    stayed = {f"keep{i:03d}" for i in range(60)}
    for name in stayed | {f"gone{i:03d}" for i in range(30)}:
        (root / name).write_text("x")
    (root / "sub").mkdir()
    for i in range(20):
        (root / "sub" / f"s{i:02d}").write_text("x")
    stayed |= {"sub"} | {f"sub/s{i:02d}" for i in range(20)}
    b = cluster.b(root, "--name", "b")

    def churn(number: int) -> None:
        for i in range(3):  # names created before and after the position, and deletions
            (root / f"new{number:03d}-{i}").write_text("x")
            (root / f"a-new{number:03d}-{i}").write_text("x")
            (root / "sub" / f"z{number:03d}-{i}").write_text("x")
        for gone in sorted(root.glob(f"gone{number % 30:03d}")):
            gone.unlink()

    with Client(b.endpoint, timeout=20) as client:
        names = pages_by_hand(client, 4, churn, recursive=True)
    assert len(names) == len(set(names)), "a name was sent twice"
    assert stayed <= set(names), f"missing: {sorted(stayed - set(names))}"
    assert names == sorted(names, key=order_key)


def test_a_source_restarted_between_pages_resumes_after_the_last_name(cluster, tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    for i in range(40):
        (root / f"f{i:02d}").write_text("x")
    endpoint = unused_tcp_endpoint()
    b = cluster.b(root, "--name", "b", bind=endpoint)
    with Client(endpoint, timeout=20) as client:
        first, header = ask(client, page_entries=15)
        b.stop()
        cluster.b(root, "--name", "b", bind=endpoint)  # a new node: its cursors are gone
        rest, header = ask(client, page_entries=1000, token=header.token)
        assert header.token is None
    assert first + rest == [f"f{i:02d}" for i in range(40)]


def test_a_relays_upstream_restarted_between_pages(cluster, tmp_path):
    a_root, b_root = tmp_path / "a", tmp_path / "b"
    for root, prefix in ((a_root, "a"), (b_root, "b")):
        root.mkdir()
        for i in range(30):
            (root / f"{prefix}{i:02d}").write_text("x")
    endpoint = unused_tcp_endpoint()
    b = cluster.b(b_root, "--name", "b", bind=endpoint)
    a = cluster.a(a_root, endpoint, args=["--name", "a"])
    with Client(a.endpoint, timeout=20) as client:
        first, header = ask(client, page_entries=10)
        b.stop()
        cluster.b(b_root, "--name", "b", bind=endpoint)
        names = first
        while header.token is not None:
            more, header = ask(client, page_entries=10, token=header.token)
            names += more
    assert sorted(names) == sorted([f"a{i:02d}" for i in range(30)]
                                   + [f"b{i:02d}" for i in range(30)])


def test_a_forged_token_is_a_bad_request(cluster, tmp_path):
    b = cluster.b(tmp_path)
    with Client(b.endpoint, timeout=10) as client:
        for forged in (b"\x00garbage", os.urandom(40), b"\x91\x01"):
            with pytest.raises(Refused) as caught:
                ask(client, page_entries=5, token=forged)
            assert caught.value.code == "bad_request"
        _, header = ask(client, page_entries=1)
        assert header.token is not None


def test_a_token_for_another_path_is_a_bad_request(cluster, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    for i in range(5):
        (tmp_path / "one" / f"f{i}").write_text("x")
    b = cluster.b(tmp_path)
    with Client(b.endpoint, timeout=10) as client:
        _, header = ask(client, "one", page_entries=2)
        with pytest.raises(Refused) as caught:
            ask(client, "two", page_entries=2, token=header.token)
        assert caught.value.code == "bad_request" and "another path" in str(caught.value)


def test_a_forged_position_never_leaves_the_root(cluster, tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "x").write_text("x")
    (tmp_path / "secret").write_text("x")
    b = cluster.b(root)
    with Client(b.endpoint, timeout=10) as client:
        for after in ("../secret", "/etc/passwd", "d/../../secret", "c"):
            forged = tokens.encode_token(tokens.Token("", "", None, after))
            names = pages_by_hand(client, 100, recursive=True, token=forged)
            assert set(names) <= {"d", "d/x"}


def test_a_token_from_another_node_resumes_by_name(cluster, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        root.mkdir()
        for i in range(10):
            (root / f"f{i}").write_text("x")
    (two / "f45").write_text("x")
    b1, b2 = cluster.b(one, "--name", "one"), cluster.b(two, "--name", "two")
    with Client(b1.endpoint, timeout=10) as first, Client(b2.endpoint, timeout=10) as second:
        names, header = ask(first, page_entries=5)
        assert names == ["f0", "f1", "f2", "f3", "f4"]
        rest, header = ask(second, page_entries=100, token=header.token)
    assert rest == ["f45", "f5", "f6", "f7", "f8", "f9"]
    assert header.token is None


def test_the_client_command_pages_and_keeps_todays_answer(cluster, tmp_path):
    from conftest import run_client

    a_root, b_root = tmp_path / "a", tmp_path / "b"
    for root in (a_root, b_root):
        (root / "d").mkdir(parents=True)
        for i in range(25):
            (root / "d" / f"f{i:02d}").write_text("x")
    (a_root / "only-a").write_text("x")
    b = cluster.b(b_root, "--name", "b")
    a = cluster.a(a_root, b.endpoint, args=["--name", "a"])
    unpaged = run_client("--server", a.endpoint, "-R", "--page-entries", "0")
    for size in ("1", "7"):
        result = run_client("--server", a.endpoint, "-R", "--page-entries", size)
        assert result.returncode == 0, result.stderr_text
        assert result.stdout_text == unpaged.stdout_text
    lines = unpaged.stdout_text.splitlines()
    assert lines[:3] == ["d  (a, b)", "d/f00  (a, b)", "d/f01  (a, b)"]
    assert lines[-1] == "only-a"


def test_the_worked_example_of_the_protocol_document(cluster, tmp_path):
    """docs/protocol.md, *Pages*: A (empty) in front of B, ``-R`` in pages of 2."""
    a_root, b_root = tmp_path / "a", tmp_path / "b"
    a_root.mkdir()
    (b_root / "a").mkdir(parents=True)
    for name in ("a/x", "a/y", "a-b", "b"):
        (b_root / name).write_text("x")
    b = cluster.b(b_root, "--name", "B")
    a = cluster.a(a_root, b.endpoint, args=["--name", "A"])
    with Client(a.endpoint, timeout=10) as client:
        seen, token, horizon = [], None, None
        while True:
            reply = client.send("list", "", recursive=True, stat=False, page_entries=2,
                                token=token, horizon=horizon)
            header = reply.header
            seen.append([e.name for e in reply])
            own, upstream = header.sources[0], header.sources[-1]
            assert own.name == "A" and own.next is None and own.entries == 0
            if header.token is None:
                break
            assert upstream.name == "B" and upstream.next is not None
            decoded = tokens.decode_token(header.token, "")
            assert decoded.done and [ep for ep, _ in decoded.upstreams] == [b.endpoint]
            token, horizon = header.token, upstream.last
    assert seen == [["a", "a/x"], ["a/y", "a-b"], ["b"]]


def test_an_upstream_lost_mid_listing_is_a_failed_source_and_the_rest_goes_on(cluster,
                                                                               tmp_path):
    a_root, b_root = tmp_path / "a", tmp_path / "b"
    for root, prefix in ((a_root, "a"), (b_root, "b")):
        root.mkdir()
        for i in range(30):
            (root / f"{prefix}{i:02d}").write_text("x")
    b = cluster.b(b_root, "--name", "b")
    a = cluster.a(a_root, b.endpoint, args=["--name", "a"])
    with Client(a.endpoint, timeout=20) as client:
        pages = client.stream(stat=False, page_entries=10)
        names = []
        for entry in pages:
            names.append(entry.name)
            if len(names) == 5:
                b.kill()  # for good: its pages stop here
    failed = {s.name: s for s in pages.sources if s.failed}
    assert list(failed) == ["b"] and failed["b"].code in ("unreachable", "timeout")
    assert names == sorted(names) and len(names) == len(set(names))
    assert {f"a{i:02d}" for i in range(30)} <= set(names)


def test_ndjson_arrives_unmerged_and_complete(cluster, tmp_path):
    import json

    from conftest import run_client

    a_root, b_root = tmp_path / "a", tmp_path / "b"
    for root, prefix in ((a_root, "a"), (b_root, "b")):
        (root / "d").mkdir(parents=True)
        for i in range(40):
            (root / "d" / f"{prefix}{i:02d}").write_text("x")
    b = cluster.b(b_root, "--name", "b")
    a = cluster.a(a_root, b.endpoint, args=["--name", "a"])
    proc = run_client("--server", a.endpoint, "-R", "--ndjson", "--page-entries", "7")
    assert proc.returncode == 0, proc.stderr_text
    lines = [json.loads(line) for line in proc.stdout_text.splitlines()]
    entries, last = lines[:-1], lines[-1]
    assert sorted((e["source"], e["name"]) for e in entries) == sorted(
        [(s, "d") for s in "ab"] + [(s, f"d/{s}{i:02d}") for s in "ab" for i in range(40)])
    assert [s["entries"] for s in last["sources"]] == [41, 41]
