"""The client's output across sources on real chains: NDJSON's sources line, --source, --compare."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Dict, Sequence, Tuple

import pytest

from conftest import make_tree, run_client, unused_tcp_endpoint

pytestmark = pytest.mark.timeout(60)


# -- JSON, NDJSON, --source -------------------------------------------------------------------

def test_ndjson_one_entry_per_line_then_the_sources(cluster, two_roots):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint, "-R", "--ndjson")
    assert proc.returncode == 0, proc.stderr_text
    *entries, last = [json.loads(line) for line in proc.stdout_text.splitlines()]
    document = json.loads(run_client("--server", a.endpoint, "-R", "--json").stdout)
    key = lambda e: (e["name"], e["source"])  # noqa: E731
    assert sorted(entries, key=key) == sorted(document["entries"], key=key)
    assert [s["name"] for s in last["sources"]] == ["server_a", "server_b"]
    only_b = run_client("--server", a.endpoint, "-R", "--ndjson", "--source", "server_b")
    assert {json.loads(line).get("source") for line in only_b.stdout_text.splitlines()} == {
        "server_b", None}


def test_source_shows_one_source_and_rejects_a_name_nobody_has(cluster, two_roots):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    lines = run_client("--server", a.endpoint, "-l", "--source", "server_b").stdout_text
    assert [line.split()[-1] for line in lines.splitlines()] == ["beta.txt", "both.txt", "sub"]
    assert {line.split()[-2] for line in lines.splitlines()} == {"server_b"}
    wrong = run_client("--server", a.endpoint, "--source", "server_z")
    assert wrong.returncode == 2
    assert "server_z" in wrong.stderr_text and "server_a, server_b" in wrong.stderr_text
    assert run_client("--server", a.endpoint, "--json", "--ndjson").returncode == 2
    assert run_client("--server", a.endpoint, "--compare", "--sort", "size").returncode == 2
    assert run_client("--server", a.endpoint, env={"ZDIR_COLOR": "sometimes"}).returncode == 2


# -- --compare ----------------------------------------------------------------------------------

T0 = 1_600_000_000


def touch(path: Path, seconds: float) -> None:
    os.utime(path, (seconds, seconds))


def differing_trees(tmp_path: Path) -> Tuple[Path, Path]:
    """Two roots that differ in every way --compare can tell, on the top level and below."""
    a = make_tree(tmp_path / "a", {"same.txt": "same", "size.txt": "1", "kind": {},
                                   "mtime.txt": "m", "close.txt": "c", "only_a.txt": "a",
                                   "sub": {"deep_a": "", "both": "b"}})
    b = make_tree(tmp_path / "b", {"same.txt": "same", "size.txt": "22", "kind": "file",
                                   "mtime.txt": "m", "close.txt": "c", "only_b.txt": "b",
                                   "sub": {"deep_b": "", "both": "b"}})
    for root in (a, b):
        for path in root.rglob("*"):
            touch(path, T0)
    touch(b / "mtime.txt", T0 + 3600)
    touch(a / "close.txt", T0 + 0.4)  # within the default modify window
    return a, b


def statuses(lines: Sequence[str]) -> Dict[str, str]:
    return dict(reversed(re.split(r"  +", line, maxsplit=1)) for line in lines)


def test_compare_tells_every_difference(cluster, tmp_path):
    a_root, b_root = differing_trees(tmp_path)
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint, "--compare", "-R")
    assert proc.returncode == 0, proc.stderr_text
    assert statuses(proc.stdout_text.splitlines()) == {
        "close.txt": "same",
        "kind": "differs (type)",
        "mtime.txt": "differs (mtime)",
        "only_a.txt": "only on server_a",
        "only_b.txt": "only on server_b",
        "same.txt": "same",
        "size.txt": "differs (size)",
        "sub": "same",
        "sub/both": "same",
        "sub/deep_a": "only on server_a",
        "sub/deep_b": "only on server_b",
    }
    exact = run_client("--server", a.endpoint, "--compare", "--modify-window", "0", "-r")
    lines = exact.stdout_text.splitlines()
    assert lines[-1].endswith("close.txt") and statuses(lines)["close.txt"] == "differs (mtime)"
    document = json.loads(run_client("--server", a.endpoint, "--compare", "--json").stdout)
    assert [s["name"] for s in document["sources"]] == ["server_a", "server_b"]
    by_name = {record["name"]: record for record in document["names"]}
    assert by_name["size.txt"]["status"] == "differs"
    assert by_name["size.txt"]["differs"] == ["size"]
    assert by_name["size.txt"]["sources"]["server_b"]["size"] == 2
    assert by_name["only_a.txt"]["missing"] == ["server_b"]
    assert set(by_name["kind"]["sources"]) == {"server_a", "server_b"}
    assert by_name["kind"]["sources"]["server_a"]["type"] == "dir"
    ndjson = run_client("--server", a.endpoint, "--compare", "--ndjson").stdout_text
    assert [json.loads(line) for line in ndjson.splitlines()][:-1] == document["names"]


def test_compare_three_sources_and_choosing_two(cluster, tmp_path):
    roots = {name: make_tree(tmp_path / name, files) for name, files in [
        ("a", {"all.txt": "x", "ac.txt": "x"}),
        ("b", {"all.txt": "x", "b.txt": "x"}),
        ("c", {"all.txt": "x", "ac.txt": "x"}),
    ]}
    for root in roots.values():
        for path in root.iterdir():
            touch(path, T0)
    c = cluster.b(roots["c"], "--name", "server_c")
    b = cluster.b(roots["b"], "--upstream", c.endpoint)
    a = cluster.a(roots["a"], b.endpoint)
    every = run_client("--server", a.endpoint, "--compare")
    assert statuses(every.stdout_text.splitlines()) == {
        "ac.txt": "only on server_a, server_c", "all.txt": "same", "b.txt": "only on server_b"}
    two = run_client("--server", a.endpoint, "--compare", "--source", "server_a",
                     "--source", "server_c")
    assert statuses(two.stdout_text.splitlines()) == {"ac.txt": "same", "all.txt": "same"}


def test_compare_with_a_failed_source_is_partial(cluster, tmp_path):
    a_root = make_tree(tmp_path / "a", {"mine.txt": "m"})
    a = cluster.a(a_root, unused_tcp_endpoint(),
                  args=["--upstream-timeout", "0.3", "--upstream-retries", "0"])
    proc = run_client("--server", a.endpoint, "--compare", "--json")
    assert proc.returncode == 3
    record = json.loads(proc.stdout)["names"][0]
    assert record["status"] == "only" and record["missing"] == []
    assert len(record["unknown"]) == 1  # the upstream that never answered
    assert "failed" in proc.stderr_text
