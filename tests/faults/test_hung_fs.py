"""A hung file system under a node's root, and walks nobody waits for (issue 10, items 1 and 5).

A FUSE file system (``tests/fusefs.py``) stands in for a dead NFS server: its
``readdir`` or ``stat`` blocks in the kernel until the test releases it. While
walks are stuck there, the node must go on answering everything that does not need
that directory, end each stuck request at its deadline with what it has, and keep
the threads it spends on it bounded. Its endless directory cycle stands in for a
walk that would run for minutes: abandoned, it must stop; asked again while it runs,
it must be joined, not started twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
import zmq

from conftest import clean_env, make_tree, proc_status, run_client, wait_until
from fusefs import HUNG, fusefs  # noqa: F401 (the fixture)
from zdir import protocol, walks
from zdir.client import Client
from zdir.exchange import BUSY_BACKOFF_MAX
from zdir.errors import Refused

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="FUSE and /proc: Linux"),
]

STUCK = "still running at the deadline"
PROMPT = 1.0  # seconds: what a ping, a refusal or a small listing may take beside a hang
# Threads a node runs besides its workers: main, ZeroMQ's I/O and reaper threads, and
# its stdout reader; a few more for headroom, none of them per request.
OTHER_THREADS = 6


def node_root(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "root", {"plain": {"p1": "x", "p2": "y"}})


def start_client(*args: str) -> subprocess.Popen:
    """A ``zdir`` client running in the background (stopped by the test, or by itself)."""
    return subprocess.Popen([sys.executable, "-m", "zdir.client", *args], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen, timeout: float = 20.0):
    """Wait for a background client; its exit status, stdout and stderr as text."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"client {proc.args} did not end: {err!r}") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def stuck_in_fuse(pid: int) -> int:
    """Threads of a process waiting in the kernel for a FUSE call: the daemon's answer,
    or their turn (the kernel lets one call at a time into a directory), per wchan."""
    waiting = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/wchan") as wchan:
                where = wchan.read()
        except OSError:  # the thread ended
            continue
        waiting += where == "request_wait_answer" or where.startswith("fuse_")
    return waiting


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (utime, stime in /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def assert_serves_the_rest(endpoint: str) -> None:
    """A ping, a bad_path refusal and another directory, each answered promptly."""
    with Client(endpoint, timeout=10) as client:
        sources, took = timed(client.ping)
        assert sources[0].ok and took < PROMPT, (sources, took)
        started = time.monotonic()
        with pytest.raises(Refused) as refused:
            client.list("../etc")
        assert refused.value.code == "bad_path"
        assert time.monotonic() - started < PROMPT
        listing, took = timed(lambda: client.list("plain"))
        assert listing.complete and sorted(e.name for e in listing.entries) == ["p1", "p2"]
        assert took < PROMPT, took


@pytest.mark.parametrize("mode", ["hang", "stat-hang"])
def test_a_hung_directory_leaves_pings_refusals_and_other_directories_served(
        cluster, fusefs, tmp_path, mode):  # noqa: F811
    """Three clients stuck in hung directories (two walks: one joins); the rest is served.

    The old node answered pings, refusals and cached listings in its broker, after
    a stat of the directory: one stuck stat, or two stuck requests, froze it whole.
    """
    root = node_root(tmp_path)
    mount = fusefs(root / "fuse", mode)
    node = cluster.b(root)
    stuck = [start_client("--server", node.endpoint, path, "--timeout", "4")
             for path in ("fuse/hang", "fuse/hang-01", "fuse/hang")]
    assert wait_until(lambda: stuck_in_fuse(node.pid) == 2), mount.counts()  # two walks
    assert_serves_the_rest(node.endpoint)
    for proc in stuck:
        code, out, err = finish(proc)
        assert code == 3 and out == "", (code, out, err)  # partial: the only source timed out
        assert "server_b" in err and "timeout" in err and STUCK in err, err
    assert stuck_in_fuse(node.pid) == 2  # still stuck, and still only two


@pytest.mark.parametrize("mode", ["hang", "stat-hang"])
def test_a_recursive_listing_over_a_hung_directory_answers_what_came_before_it(
        cluster, fusefs, tmp_path, mode):  # noqa: F811
    """``-R`` walks ``a/`` and ``b.txt``, then sticks in ``hang/``: those entries come back.

    The old node answered exit 4 and no entries; a walk that sticks before its first
    chunk is full must still answer the entries it found.
    """
    root = node_root(tmp_path)
    fusefs(root / "fuse", mode)
    node = cluster.b(root)
    code, out, err = finish(start_client("--server", node.endpoint, "-R", "fuse",
                                         "--timeout", "3"))
    assert code == 3, (code, out, err)
    assert "timeout" in err and STUCK in err, err
    # Pre-order, names in code-point order: a/ and its files, b.txt, then hang/ itself.
    assert out.split() == ["a", "a/1", "a/2", "a/3", "b.txt", "hang"], out


def test_walks_stuck_in_hung_directories_hold_a_bounded_number_of_threads(
        cluster, fusefs, tmp_path, zmq_context):  # noqa: F811
    """Twelve top-level directories lead into twelve hung ones; requests keep coming for each.

    Every abandoned stuck walk gets a stand-in thread, so the node keeps listing,
    but never more than ``workers * MAX_THREADS_FACTOR`` threads in all: past that,
    stuck walks keep their threads and the node says so in its log. Pings are
    answered throughout.
    """
    root = node_root(tmp_path)
    mount = fusefs(root / "fuse", "hang")
    tops = [f"t{i:02d}" for i in range(len(HUNG))]
    for top, hung in zip(tops, HUNG):  # each its own top: the per-directory share allows it
        os.symlink(f"fuse/{hung}", root / top)
    workers = 2
    limit = workers * walks.MAX_THREADS_FACTOR
    node = cluster.b(root, "--workers", str(workers))
    baseline = proc_status(node.pid, "Threads")
    assert baseline <= workers + OTHER_THREADS
    flooder = zmq_context.socket(zmq.DEALER)
    flooder.connect(node.endpoint)
    sent, most = 0, baseline
    deadline = time.monotonic() + 20
    while stuck_in_fuse(node.pid) < limit and time.monotonic() < deadline:
        sent += send_requests(flooder, tops, deadline_ms=300)
        time.sleep(0.3)  # the requests' deadline: each round, every free worker gets stuck
        most = max(most, proc_status(node.pid, "Threads"))
    assert stuck_in_fuse(node.pid) == limit, (mount.counts(), sent)
    for _ in range(5):  # more rounds: no thread is added beyond the limit
        sent += send_requests(flooder, tops, deadline_ms=300)
        time.sleep(0.3)
        most = max(most, proc_status(node.pid, "Threads"))
    assert stuck_in_fuse(node.pid) == limit
    assert most == baseline - workers + limit, (most, baseline, limit)
    assert f"(limit {limit})" in node.log()
    with Client(node.endpoint, timeout=10) as client:
        sources, took = timed(client.ping)
        assert sources[0].ok and took < PROMPT, took
    # Every worker is stuck now: a listing ends at its deadline, saying why.
    code, _, err = finish(start_client("--server", node.endpoint, "plain", "--timeout", "2"))
    assert code == 3 and "no worker was free" in err, err


def send_requests(sock: zmq.Socket, paths: List[str], deadline_ms: int) -> int:
    """Send one list request per path on a DEALER (REQ's envelope), and drain the replies."""
    for path in paths:
        request = protocol.Request("list", os.urandom(8), path, stat=False,
                                   deadline_ms=deadline_ms)
        sock.send_multipart([b"", protocol.encode_request(request)])
    while sock.poll(0):
        sock.recv_multipart()
    return len(paths)


def test_an_abandoned_walk_stops_and_a_retry_joins_the_running_walk(
        cluster, fusefs, tmp_path):  # noqa: F811
    """Two users' ``-R`` over an endless cycle: one walk for both, stopped once both give up.

    ``--glob`` matches nothing, as a search usually does: the walk then sends no
    chunk at all, so it must be stopped between directories, not between chunks.
    The old node started a walk per attempt and let every one run to the end.
    """
    root = node_root(tmp_path)
    mount = fusefs(root / "fuse", "cycle")
    node = cluster.b(root)
    ask = ("--server", node.endpoint, "-R", "--glob", "*.nothing", "fuse/loop", "--timeout", "3")
    first = start_client(*ask)
    assert wait_until(lambda: mount.counts()["readdir"] > 100, timeout=10), mount.counts()
    again = start_client(*ask)  # the user tries again while the first walk runs
    results = [finish(first), finish(again)]
    for code, out, err in results:
        assert code == 3 and out == "", (code, out, err)
        assert STUCK in err, err  # both waited on a walk that was running
    assert mount.counts()["paths"].get("/loop") == 1  # the cycle's top was read once: one walk
    # Both gave up: the walk stops within a directory or two, and so does the node's CPU.
    assert wait_until(lambda: settled(mount, node.pid), timeout=5), mount.counts()


def settled(mount, pid: int, window: float = 0.5) -> bool:
    """No readdir reached the file system, and the node used (almost) no CPU, for a while."""
    readdirs, cpu = mount.counts()["readdir"], cpu_seconds(pid)
    time.sleep(window)
    return mount.counts()["readdir"] == readdirs and cpu_seconds(pid) - cpu < 0.1 * window


def test_busy_beyond_max_pending_while_the_one_worker_hangs(cluster, fusefs, tmp_path):  # noqa: F811
    """One worker, no queue: it is stuck in ``hang/``, so the next listing hears ``busy``.

    The client asks again, with growing jittered pauses, until its deadline; then
    exit 4, saying busy. Pings need no worker and are answered meanwhile.
    """
    root = node_root(tmp_path)
    mount = fusefs(root / "fuse", "hang")
    node = cluster.b(root, "--workers", "1", "--max-pending", "0")
    first = start_client("--server", node.endpoint, "fuse/hang", "--timeout", "20")
    try:
        assert mount.wait_blocked(1) == 1, mount.counts()  # the worker took it: not busy
        started = time.monotonic()
        second = run_client("--server", node.endpoint, "plain", "--timeout", "5")
        took = time.monotonic() - started
        assert second.returncode == 4, second.stderr_text
        attempts = re.search(r"still busy at the deadline after (\d+) attempts: .*busy",
                             second.stderr_text)
        assert attempts, second.stderr_text
        # Asked again and again over its deadline: no pause is longer than 3 s, so it gave
        # up after 2 s at the soonest, after 7 attempts at the fewest (the old client: 3
        # attempts in 0.6 s).
        assert int(attempts[1]) >= 6 and took > 5 - 1.5 * BUSY_BACKOFF_MAX, took
        ping = run_client("--server", node.endpoint, "--ping", "--timeout", "5")
        assert ping.returncode == 0, ping.stderr_text
    finally:
        first.kill()
        first.communicate()


def test_a_relay_asks_a_busy_upstream_again_until_it_answers(cluster, fusefs, tmp_path):  # noqa: F811
    """B's one worker is stuck, so B tells A "busy"; A asks again with growing pauses
    (as the client does), and once B is free the listing is complete, B's part included."""
    root = node_root(tmp_path)
    mount = fusefs(root / "fuse", "hang")
    b = cluster.b(root, "--workers", "1", "--max-pending", "0")
    a = cluster.a(make_tree(tmp_path / "a", {"plain": {"from_a": "x"}}), b.endpoint)
    first = start_client("--server", b.endpoint, "fuse/hang", "--timeout", "20")
    try:
        assert mount.wait_blocked(1) == 1, mount.counts()
        through_a = start_client("--server", a.endpoint, "plain", "--timeout", "20")
        assert wait_until(lambda: "'plain' status=refused code=busy" in b.log(), timeout=10)
        mount.release()
        code, out, err = finish(through_a)
        assert code == 0, err
        assert {"from_a", "p1", "p2"} <= set(out.split())
    finally:
        first.kill()
        first.communicate()


def test_a_kept_listing_is_served_while_the_one_worker_hangs_until_it_changes(
        cluster, fusefs, tmp_path):  # noqa: F811
    """The loop answers a listing it can vouch for from memory, with no worker and no
    file-system call; a change made just before the request sends it to a worker."""
    root = node_root(tmp_path)
    mount = fusefs(root / "fuse", "hang")
    node = cluster.b(root, "--workers", "1")
    with Client(node.endpoint, timeout=10) as client:
        client.list("plain")  # listed, kept, and indexed by its path
    stuck = start_client("--server", node.endpoint, "fuse/hang", "--timeout", "6")
    try:
        assert mount.wait_blocked(1) == 1, mount.counts()  # the one worker is stuck
        with Client(node.endpoint, timeout=2) as client:
            listing, took = timed(lambda: client.list("plain"))
            assert listing.complete and took < PROMPT, (listing.sources, took)
            assert {e.name: e.size for e in listing.entries} == {"p1": 1, "p2": 1}
            paged = client.stream("plain", page_entries=10)  # as the zdir command asks
            assert [e.name for e in paged] == ["p1", "p2"] and paged.header.token is None
            (root / "plain" / "p1").write_text("longer")
            late = client.list("plain")  # must not be the kept one: it waits for a worker
            assert not late.complete and "no worker was free" in late.failed[0].error["message"]
    finally:
        finish(stuck)
