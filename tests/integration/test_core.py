"""The spine across real processes: any start order, merging, paths, exit codes, lifecycle."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time

import pytest

from conftest import make_tree, run_client, unused_tcp_endpoint

pytestmark = pytest.mark.timeout(60)


def names(proc) -> list:
    return proc.stdout_text.splitlines()


def test_merged_listing_sorted_with_duplicates(cluster, two_roots):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint)
    assert proc.returncode == 0, proc.stderr_text
    assert names(proc) == ["alpha.txt", "beta.txt", "both.txt  (server_a, server_b)",
                           "sub  (server_a, server_b)"]


def test_json_shape_and_sources(cluster, two_roots):
    a_root, b_root = two_roots
    b = cluster.b(b_root, "--name", "bee")
    a = cluster.a(a_root, b.endpoint, args=["--name", "ay"])
    proc = run_client("--server", a.endpoint, "--json")
    assert proc.returncode == 0, proc.stderr_text
    doc = json.loads(proc.stdout)
    assert set(doc) == {"entries", "sources"}
    both = [e for e in doc["entries"] if e["name"] == "both.txt"]
    assert {e["source"] for e in both} == {"ay", "bee"}
    assert {e["size"] for e in both} == {6, 7}
    for entry in doc["entries"]:
        assert set(entry) == {"name", "type", "size", "mtime", "mode", "source"}
    assert [(s["name"], s["ok"], s["endpoint"]) for s in doc["sources"]] == [
        ("ay", True, a.endpoint), ("bee", True, b.endpoint)]


def test_any_start_order_a_first_then_b(cluster, two_roots):
    a_root, b_root = two_roots
    b_endpoint = unused_tcp_endpoint()
    a = cluster.a(a_root, b_endpoint, args=["--upstream-timeout", "0.5", "--upstream-retries", "0"])
    early = run_client("--server", a.endpoint)
    assert early.returncode == 3
    assert "alpha.txt" in names(early) and "beta.txt" not in names(early)
    assert "server_b" in early.stderr_text or b_endpoint in early.stderr_text
    cluster.b(b_root, bind=b_endpoint)
    late = run_client("--server", a.endpoint)
    assert late.returncode == 0, late.stderr_text
    assert "beta.txt" in names(late)


def test_client_before_any_server_exits_4_naming_endpoint():
    endpoint = unused_tcp_endpoint()
    started = time.monotonic()
    proc = run_client("--server", endpoint, "--timeout", "0.5", "--retries", "1")
    assert proc.returncode == 4
    assert endpoint in proc.stderr_text
    assert time.monotonic() - started < 10


def test_client_can_ask_b_directly(cluster, two_roots):
    _, b_root = two_roots
    b = cluster.b(b_root)
    proc = run_client("--server", b.endpoint, "-l")
    assert proc.returncode == 0
    assert names(proc) and all(line.split()[5] == "server_b" for line in names(proc))


def test_subpath_present_on_one_source_only(cluster, tmp_path):
    a_root = make_tree(tmp_path / "a", {"only_a": {"x": "1"}})
    b_root = make_tree(tmp_path / "b", {"other": "2"})
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint, "only_a", "--json")
    assert proc.returncode == 0, proc.stderr_text
    doc = json.loads(proc.stdout)
    assert [e["name"] for e in doc["entries"]] == ["x"]
    b_status = doc["sources"][1]
    assert b_status["ok"] is False and b_status["error"]["code"] == "not_found"
    missing = run_client("--server", a.endpoint, "nowhere")
    assert missing.returncode == 1
    assert "not found on any source" in missing.stderr_text


@pytest.mark.parametrize("path", ["../", "a/../../x", "/etc", "sub/../.."])
def test_paths_that_climb_out_are_refused(cluster, two_roots, path):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint, path)
    assert proc.returncode == 1
    assert "bad_path" in proc.stderr_text or "refused" in proc.stderr_text.lower()
    assert proc.stdout == b""


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symlinks")
def test_symlinks_listed_not_followed_and_escapes_refused(cluster, tmp_path):
    outside = make_tree(tmp_path / "outside", {"secret": "s"})
    root = make_tree(tmp_path / "root", {"real": {"inner": "i"}})
    os.symlink(outside, root / "escape")
    os.symlink("real", root / "inside")
    b = cluster.b(root)
    listing = run_client("--server", b.endpoint, "--json")
    types = {e["name"]: e["type"] for e in json.loads(listing.stdout)["entries"]}
    assert types == {"escape": "symlink", "inside": "symlink", "real": "dir"}
    refused = run_client("--server", b.endpoint, "escape", "--json")
    assert refused.returncode == 1 and "outside_root" in refused.stderr_text
    assert b"secret" not in refused.stdout
    through = run_client("--server", b.endpoint, "inside")
    assert through.returncode == 0 and names(through) == ["inner"]


def test_hidden_only_with_a(cluster, tmp_path):
    root = make_tree(tmp_path / "r", {".hidden": "h", "shown": "s"})
    b = cluster.b(root)
    assert names(run_client("--server", b.endpoint)) == ["shown"]
    assert names(run_client("--server", b.endpoint, "-a")) == [".hidden", "shown"]


WEIRD = [" lead", "trail ", "new\nline", "tab\tname", "ünïcödé", "日本語", "back\\slash"]


def test_weird_names_survive_exactly_in_json(cluster, tmp_path):
    root = tmp_path / "weird"
    root.mkdir()
    for name in WEIRD:
        (root / name).write_text("x")
    expected = set(WEIRD)
    if sys.platform.startswith("linux"):
        raw = b"bad\xff\xfename"
        with open(os.path.join(os.fsencode(root), raw), "w") as handle:
            handle.write("x")
        expected.add(os.fsdecode(raw))
    b = cluster.b(root)
    proc = run_client("--server", b.endpoint, "--json")
    assert proc.returncode == 0, proc.stderr_text
    got = {e["name"] for e in json.loads(proc.stdout)["entries"]}
    assert got == expected
    if sys.platform.startswith("linux"):
        assert b'"bad\\udcff\\udcfename"' in proc.stdout


def test_weird_names_one_line_each_in_human_output(cluster, tmp_path):
    root = tmp_path / "weird"
    root.mkdir()
    for name in WEIRD:
        (root / name).write_text("x")
    b = cluster.b(root)
    proc = run_client("--server", b.endpoint)
    lines = names(proc)
    assert len(lines) == len(WEIRD)
    assert "new\\nline" in lines and "tab\\tname" in lines and "back\\\\slash" in lines
    assert " lead" in lines and "trail " in lines


def test_not_a_directory_and_exit_1(cluster, two_roots):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint, "alpha.txt")
    assert proc.returncode == 1
    assert "not a directory" in proc.stderr_text


def test_usage_error_exits_2():
    assert run_client("--timeout", "-1").returncode == 2
    assert run_client("--no-such-flag").returncode == 2
    bad_env = run_client(env={"ZDIR_TIMEOUT": "soon"})
    assert bad_env.returncode == 2 and "ZDIR_TIMEOUT" in bad_env.stderr_text


def test_configuration_from_environment(cluster, two_roots, tmp_path):
    a_root, b_root = two_roots
    b = cluster.start("server_b", b_root, env={"ZDIR_NAME": "from-env"})
    proc = run_client(env={"ZDIR_SERVER": b.endpoint}, timeout=30)
    assert proc.returncode == 0
    assert b.name == "from-env"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_fast_and_port_rebinds_at_once(cluster, two_roots, signum):
    _, b_root = two_roots
    endpoint = unused_tcp_endpoint()
    b = cluster.b(b_root, bind=endpoint)
    assert run_client("--server", endpoint).returncode == 0
    started = time.monotonic()
    os.kill(b.pid, signum)
    assert b.proc.wait(5) == 0
    assert time.monotonic() - started < 1.5
    assert "Traceback" not in b.log()
    again = cluster.b(b_root, bind=endpoint)
    assert again.endpoint == endpoint
    assert run_client("--server", endpoint).returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tgkill and /proc: Linux")
def test_a_signal_that_lands_on_another_thread_stops_the_node_at_once(cluster, two_roots):
    """The kernel may hand a process's SIGTERM to any of its threads; Python runs the
    handler in the main thread only once that thread runs again, and an idle node's
    loop sleeps in its poll: the signal itself must wake it."""
    tgkill = getattr(ctypes.CDLL(None, use_errno=True), "tgkill", None)
    if tgkill is None:
        pytest.skip("this C library has no tgkill")
    _, b_root = two_roots
    b = cluster.b(b_root)
    assert run_client("--server", b.endpoint).returncode == 0  # its workers have run
    others = [int(task) for task in os.listdir(f"/proc/{b.pid}/task") if int(task) != b.pid]
    started = time.monotonic()
    assert tgkill(b.pid, others[-1], signal.SIGTERM) == 0, ctypes.get_errno()
    assert b.proc.wait(5) == 0
    assert time.monotonic() - started < 1.5


def test_bind_failure_is_a_clear_error(cluster, two_roots):
    _, b_root = two_roots
    b = cluster.b(b_root)
    second = cluster.b(b_root, bind=b.endpoint, wait=False)
    assert second.proc.wait(10) != 0
    assert "cannot bind" in second.log()


def test_ping_names_every_node(cluster, two_roots):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint, "--ping")
    assert proc.returncode == 0
    lines = names(proc)
    assert lines[0].startswith("server_a ") and lines[1].startswith("server_b ")
    assert "version=" in lines[1]


def _has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_ipv6_endpoints(cluster, two_roots):
    a_root, b_root = two_roots
    b = cluster.b(b_root, bind="tcp://[::1]:*")
    a = cluster.a(a_root, b.endpoint, bind="tcp://[::1]:*")
    proc = run_client("--server", a.endpoint)
    assert proc.returncode == 0, proc.stderr_text
    assert "beta.txt" in names(proc)


def test_a_client_behind_a_zmq_proxy_is_answered(cluster, two_roots):
    """Nodes behave like REP: a longer return address (a proxy in between) is kept whole."""
    import threading

    import zmq

    from zdir.client import Client

    _, b_root = two_roots
    b = cluster.b(b_root)
    context = zmq.Context()
    front, back = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    front.linger = back.linger = 0
    port = front.bind_to_random_port("tcp://127.0.0.1")
    back.connect(b.endpoint)
    proxy = threading.Thread(target=_proxy, args=(front, back), daemon=True)
    proxy.start()
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=5, retries=0) as client:
            listing = client.list()
        assert sorted(e.name for e in listing.entries) == ["beta.txt", "both.txt", "sub"]
    finally:
        context.term()  # ends the proxy (ETERM) once its sockets close
        proxy.join(5)


def _proxy(front, back) -> None:
    import zmq

    try:
        zmq.proxy(front, back)
    except zmq.ContextTerminated:
        pass
    finally:
        front.close(linger=0)
        back.close(linger=0)
