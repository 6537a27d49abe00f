"""One line per request on stderr (op, path, sources, status, duration), none per entry."""

from __future__ import annotations

import re

import pytest
import zmq

from conftest import make_tree, run_client

pytestmark = pytest.mark.timeout(60)

REQUEST_LINE = re.compile(
    r" server_a INFO (?P<op>list|ping) (?P<path>'[^']*') (?P<rest>.*) (?P<ms>\d+\.\d)ms$"
)


def request_lines(log: str) -> list:
    return [m for m in map(REQUEST_LINE.search, log.splitlines()) if m]


def test_one_line_per_request_whatever_its_fate(cluster, tmp_path, zmq_context):
    a_root = make_tree(tmp_path / "a", {f"file{i:03}": "x" for i in range(300)})
    a_root.joinpath("sub").mkdir()
    b = cluster.b(make_tree(tmp_path / "b", {"from_b": "b"}))
    a = cluster.a(a_root, b.endpoint, args=["--upstream-timeout", "0.3",
                                            "--upstream-retries", "0"])
    assert run_client("--server", a.endpoint).returncode == 0
    assert run_client("--server", a.endpoint, "sub").returncode == 0
    assert run_client("--server", a.endpoint, "../up").returncode == 1
    assert run_client("--server", a.endpoint, "--ping").returncode == 0
    b.freeze()
    assert run_client("--server", a.endpoint).returncode == 3
    b.thaw()
    garbage = zmq_context.socket(zmq.REQ)
    garbage.connect(a.endpoint)
    garbage.send(b"\xc1 not msgpack")
    assert garbage.poll(5000)

    log = a.log()
    lines = request_lines(log)
    assert [(m["op"], m["path"]) for m in lines] == [
        ("list", "''"), ("list", "'sub'"), ("list", "'../up'"), ("ping", "''"), ("list", "''")]
    full, sub, refused, ping, partial = (m["rest"] for m in lines)
    assert full == "sources=2 entries=302 status=ok"  # 300 files, sub, from_b
    assert sub == "sources=2 entries=0 status=ok"
    assert refused == "status=refused code=bad_path"
    assert ping == "sources=2 entries=0 status=ok"
    assert re.fullmatch(r"sources=2 entries=301 status=partial failed=\S+:timeout", partial)
    assert len(re.findall("WARNING refused a malformed request", log)) == 1
    assert "file000" not in log, "no line per entry"


def test_log_level_warning_keeps_requests_quiet(cluster, tmp_path):
    b = cluster.b(make_tree(tmp_path / "b", {"x": "1"}), "--log-level", "WARNING")
    assert run_client("--server", b.endpoint).returncode == 0
    assert run_client("--server", b.endpoint, "--ping").returncode == 0
    assert " INFO " not in b.log()
