"""zdir at scale, across real processes: chunks relayed untouched, many upstreams at once,
chains and loops, recursion and its limits, filters on the servers, the listing cache
and the Python API. The heavy runs (a million entries, long loads) are benchmarks/run.py's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import List, Tuple

import pytest
import zmq

from conftest import make_tree, run_client, unused_tcp_endpoint
from zdir import Client, protocol
from zdir.entries import Entries, Entry

pytestmark = pytest.mark.timeout(60)
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and symlinks")


def raw_list(context: zmq.Context, endpoint: str,
             **fields) -> Tuple[protocol.ReplyHeader, List[bytes]]:
    """One list request by hand: the checked header and the chunk frames as they came."""
    sock = context.socket(zmq.REQ)
    sock.connect(endpoint)
    request_id = os.urandom(8)
    sock.send(protocol.encode_request(protocol.Request("list", request_id, **fields)))
    assert sock.poll(20_000), f"no reply from {endpoint}"
    frames = sock.recv_multipart()
    sock.close(linger=0)
    return protocol.decode_reply(frames, request_id), frames[1:]


def listing(endpoint: str, *args: str):
    """``zdir --json``: the process, its document (None if no output) and its wall time."""
    started = time.monotonic()
    proc = run_client("--server", endpoint, "--json", *args)
    elapsed = time.monotonic() - started
    return proc, json.loads(proc.stdout) if proc.stdout else None, elapsed


def by_name(doc) -> dict:
    return {s["name"]: s for s in doc["sources"]}


def test_chunks_stream_and_a_relays_them_byte_for_byte(cluster, tmp_path, zmq_context):
    b_root = make_tree(tmp_path / "b", {f"f{i:04d}": "" for i in range(2500)})
    b = cluster.b(b_root, "--chunk-entries", "300")
    a = cluster.a(make_tree(tmp_path / "a", {"mine": "a"}), b.endpoint)
    b_header, b_chunks = raw_list(zmq_context, b.endpoint)
    assert len(b_chunks) == 9 and b_header.sources[0].entries == 2500
    a_header, a_chunks = raw_list(zmq_context, a.endpoint)
    assert [s.name for s in a_header.sources] == ["server_a", "server_b"]
    assert a_chunks[1:] == b_chunks  # relayed as they came: never decoded, never re-encoded
    unsorted = run_client("--server", a.endpoint, "--unsorted")
    assert unsorted.returncode == 0 and len(unsorted.stdout_text.splitlines()) == 2501
    with Client(a.endpoint) as client:
        reply = client.stream(stat=False)
        sizes = [(batch.sources[0], len(batch)) for batch in reply.batches()]
    assert sizes[0] == ("server_a", 1) and {n for _, n in sizes[1:]} == {300, 100}


@posix_only
def test_frozen_upstreams_cost_one_timeout_together_not_one_each(cluster, tmp_path):
    upstreams = [cluster.b(make_tree(tmp_path / f"b{i}", {f"only{i}": ""}), "--name", f"b{i}")
                 for i in range(3)]
    env = {"ZDIR_UPSTREAM": f"{upstreams[0].endpoint}, {upstreams[1].endpoint} "
                            f"{upstreams[2].endpoint}"}
    a = cluster.start("server_a", make_tree(tmp_path / "a", {"mine": ""}),
                      "--upstream-timeout", "1", "--upstream-retries", "0", env=env)
    proc, doc, _ = listing(a.endpoint)
    assert proc.returncode == 0, proc.stderr_text
    assert list(by_name(doc)) == ["server_a", "b0", "b1", "b2"]
    assert [e["name"] for e in doc["entries"]] == ["mine", "only0", "only1", "only2"]
    for upstream in upstreams:
        upstream.freeze()
    proc, doc, elapsed = listing(a.endpoint)
    assert proc.returncode == 3
    assert [(s["name"], s["ok"], s["error"] and s["error"]["code"]) for s in doc["sources"]] == [
        ("server_a", True, None), ("b0", False, "timeout"), ("b1", False, "timeout"),
        ("b2", False, "timeout")]
    assert elapsed < 2.5  # one upstream timeout (1 s) and the client's start; in turn: over 3 s
    for name in ("b0", "b1", "b2"):
        assert f"source {name}" in proc.stderr_text


@posix_only
def test_a_chain_of_three_and_its_frozen_tail_answered_within_the_deadline(cluster, tmp_path):
    c = cluster.b(make_tree(tmp_path / "c", {"from_c": ""}), "--name", "c")
    b = cluster.start("server_a", make_tree(tmp_path / "b", {"from_b": ""}), "--name", "b",
                      "--upstream", c.endpoint)
    a = cluster.a(make_tree(tmp_path / "a", {"from_a": ""}), b.endpoint, args=["--name", "a"])
    proc, doc, _ = listing(a.endpoint)
    assert proc.returncode == 0, proc.stderr_text
    assert list(by_name(doc)) == ["a", "b", "c"]
    assert [(e["name"], e["source"]) for e in doc["entries"]] == [
        ("from_a", "a"), ("from_b", "b"), ("from_c", "c")]
    c.freeze()
    # The client gives 3 s; A keeps a margin and gives B at most its 1.5 s attempt; B keeps a
    # margin of that and gives up on C in time to answer A: the deadline shrank at each hop.
    proc, doc, elapsed = listing(a.endpoint, "--timeout", "3", "--retries", "0")
    assert proc.returncode == 3, proc.stderr_text
    sources = by_name(doc)
    assert sources["a"]["ok"] and sources["b"]["ok"]
    assert sources["c"]["error"]["code"] == "timeout"
    assert {e["name"] for e in doc["entries"]} == {"from_a", "from_b"}
    assert elapsed < 3.0


def test_a_loop_is_answered_for_that_hop_and_not_followed(cluster, tmp_path):
    a_endpoint = unused_tcp_endpoint()
    b = cluster.start("server_a", make_tree(tmp_path / "b", {"from_b": ""}), "--name", "b",
                      "--upstream", a_endpoint)
    a = cluster.a(make_tree(tmp_path / "a", {"from_a": ""}), b.endpoint, args=["--name", "a"],
                  bind=a_endpoint)
    proc, doc, elapsed = listing(a.endpoint)
    assert proc.returncode == 3  # a misconfigured chain is a partial answer, and says where
    assert [e["name"] for e in doc["entries"]] == ["from_a", "from_b"]  # each once
    looped = [s for s in doc["sources"] if s["error"] and s["error"]["code"] == "loop"]
    assert len(looped) == 1 and looped[0]["endpoint"] == a_endpoint
    assert "loop" in proc.stderr_text
    assert elapsed < 5.0  # refused at once, not timed out


@posix_only
def test_recursion_walks_every_source_relative_to_the_path_without_following_links(
        cluster, tmp_path):
    outside = make_tree(tmp_path / "outside", {"secret": ""})
    a_root = make_tree(tmp_path / "a", {"docs": {"x.md": "", "deep": {"y.md": ""}}})
    os.symlink(outside, a_root / "docs" / "link")
    os.symlink("deep", a_root / "docs" / "inner")
    b_root = make_tree(tmp_path / "b", {"docs": {"z.md": "", "deep": {"deeper": {"w.md": ""}}}})
    a, b = cluster.chain(a_root, b_root)
    proc, doc, _ = listing(a.endpoint, "-R", "docs")
    assert proc.returncode == 0, proc.stderr_text
    rows = [(e["name"], e["type"], e["source"]) for e in doc["entries"]]
    assert rows == [
        ("deep", "dir", "server_a"), ("deep", "dir", "server_b"),
        ("deep/deeper", "dir", "server_b"), ("deep/deeper/w.md", "file", "server_b"),
        ("deep/y.md", "file", "server_a"), ("inner", "symlink", "server_a"),
        ("link", "symlink", "server_a"), ("x.md", "file", "server_a"),
        ("z.md", "file", "server_b"),
    ]
    depth = {n: run_client("--server", a.endpoint, "-1", "--max-depth", str(n), "docs")
             .stdout_text for n in (1, 2)}
    assert depth[1].split() == ["deep", "inner", "link", "x.md", "z.md"]  # find -maxdepth 1
    assert depth[2].split() == ["deep", "deep/deeper", "deep/y.md", "inner", "link", "x.md",
                                "z.md"]


def test_server_limits_cut_the_listing_short_with_a_code(cluster, tmp_path):
    wide = cluster.b(make_tree(tmp_path / "wide", {f"n{i:03d}": "" for i in range(200)}),
                     "--max-entries", "50")
    proc, doc, _ = listing(wide.endpoint, "--page-entries", "0")  # one reply: cut at 50
    assert proc.returncode == 3
    (status,) = doc["sources"]
    assert status["truncated"] and status["error"]["code"] == "limit_exceeded"
    assert status["entries"] == len(doc["entries"]) == 50
    assert "limit_exceeded" in proc.stderr_text
    # --max-entries bounds each reply: paged, every entry comes, 50 at most per page.
    proc, doc, _ = listing(wide.endpoint, "--page-entries", "80")
    assert proc.returncode == 0 and len(doc["entries"]) == 200
    deep = cluster.b(make_tree(tmp_path / "deep", {"a": {"b": {"c": {"d": ""}}}}),
                     "--max-depth", "2")
    proc, doc, _ = listing(deep.endpoint, "-R")
    assert proc.returncode == 3
    assert [e["name"] for e in doc["entries"]] == ["a", "a/b"]
    assert doc["sources"][0]["error"]["code"] == "limit_exceeded"


def test_glob_and_exclude_run_on_the_servers(cluster, tmp_path, zmq_context):
    spec = {f"f{i:04d}.log": "" for i in range(2000)}
    spec.update({"keep1.txt": "", "keep2.txt": "", "skip": {f"s{i}.txt": "" for i in range(500)},
                 "sub": {"keep3.txt": ""}})
    b = cluster.b(make_tree(tmp_path / "b", spec))
    header, chunks = raw_list(zmq_context, b.endpoint, recursive=True, glob=("*.txt",),
                              exclude=("skip",))
    assert header.sources[0].entries == 3
    assert sum(map(len, chunks)) < 200  # three names and their stat: nothing else travelled
    found = run_client("--server", b.endpoint, "-R", "--glob", "*.txt", "--exclude", "skip")
    assert found.stdout_text.split() == ["keep1.txt", "keep2.txt", "sub/keep3.txt"]
    two = run_client("--server", b.endpoint, "--glob", "keep1*", "--glob", "f0007.*")
    assert two.stdout_text.split() == ["f0007.log", "keep1.txt"]


@posix_only
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the exact cache needs inotify")
def test_the_cache_never_serves_a_stale_listing(cluster, tmp_path):
    root = make_tree(tmp_path / "r", {"grows": "1", "other": ""})
    b = cluster.b(root, "--stat-ttl", "3600")  # the ttl does not matter where changes are seen
    front = cluster.a(make_tree(tmp_path / "a", {"from_a": ""}), b.endpoint)

    def sizes(server) -> dict:
        proc, doc, _ = listing(server.endpoint)
        assert proc.returncode == 0, proc.stderr_text
        return {e["name"]: e["size"] for e in doc["entries"]}

    assert sizes(b) == sizes(b) == {"grows": 1, "other": 0}  # the second may be a cached one
    (root / "grows").write_text("12345")  # the file changes; its directory does not
    assert sizes(b)["grows"] == 5
    os.chmod(root / "other", 0o600)
    (root / "new").write_text("")
    assert sizes(b) == {"grows": 5, "new": 0, "other": 0}
    assert listing(front.endpoint)[0].returncode == 0  # A's own part may be cached now
    b.freeze()  # A answers its own part at once, and reports B when its heartbeats stop
    proc, doc, _ = listing(front.endpoint)
    assert proc.returncode == 3 and [e["name"] for e in doc["entries"]] == ["from_a"]
    failed = doc["sources"][1]
    assert failed["error"]["code"] == "timeout" and failed["elapsed_ms"] < 2500, failed


def test_the_python_api(cluster, two_roots):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    with Client(a.endpoint, timeout=5) as client:
        result = client.list()
        assert isinstance(result.entries, Entries) and result.complete
        assert [s.name for s in result.sources] == ["server_a", "server_b"]
        result.entries.sort()
        assert [(e.name, e.source) for e in result.entries] == [
            ("alpha.txt", "server_a"), ("beta.txt", "server_b"), ("both.txt", "server_a"),
            ("both.txt", "server_b"), ("sub", "server_a"), ("sub", "server_b")]
        assert result.entries[2] == Entry("both.txt", "file", 6, result.entries[2].mtime,
                                          result.entries[2].mode, "server_a")
        streamed = list(client.stream("sub", stat=False))
        assert sorted(streamed) == [Entry("in_a", "file", None, None, None, "server_a"),
                                    Entry("in_b", "file", None, None, None, "server_b")]
        assert [s.name for s in client.ping()] == ["server_a", "server_b"]
