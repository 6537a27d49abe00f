"""A node against upstreams that flood, lie about sizes, or take their time (issue 10).

Real server_a processes; the upstream is the test itself, speaking ZMTP by hand
(tests/zmtp.py), so it can send what no libzmq peer would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import clean_env, make_tree, proc_status, run_client, wait_until
from zmtp import ZmtpPeer, flood, good_reply, huge_frame_header

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for memory"),
]

FLOOD_FRAMES = 3_000_000  # 6 MB on the wire; ~190 MiB of libzmq messages once received
GIB = 1 << 30


@pytest.fixture
def peer():
    made = ZmtpPeer()
    try:
        yield made
    finally:
        made.close()


def client(endpoint: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zdir.client", "--server", endpoint, "--json",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=clean_env())


def upstream_source(out: bytes) -> dict:
    return json.loads(out)["sources"][1]


def test_a_flood_of_frames_is_cut_off_and_the_node_keeps_serving(cluster, tmp_path, peer):
    a = cluster.a(make_tree(tmp_path / "a", {"own": ""}), peer.endpoint)
    peer.accept()  # A's link connects at start
    baseline = proc_status(a.pid, "VmRSS")
    waiting = client(a.endpoint)
    request = peer.receive()
    started = time.monotonic()
    peer.send(flood(request.id, FLOOD_FRAMES))
    out, err = waiting.communicate(timeout=60)
    cut_off = time.monotonic() - started
    assert waiting.returncode == 3, err
    source = upstream_source(out)
    assert source["error"]["code"] == "limit_exceeded" and "--max-reply-bytes" in \
        source["error"]["message"]
    assert cut_off < 5.0, f"the flood held the answer for {cut_off:.1f}s"
    # Served while the flood's memory is being handed back: a ping needs no upstream work.
    ping = run_client("--server", a.endpoint, "--ping", "--timeout", "3")
    assert ping.returncode == 3 and ping.stdout_text.startswith("server_a ")
    assert wait_until(lambda: proc_status(a.pid, "VmRSS") - baseline < 48 << 10, timeout=10), \
        f"A kept {(proc_status(a.pid, 'VmRSS') - baseline) >> 10} MiB after the flood " \
        f"(peak {proc_status(a.pid, 'VmHWM') >> 10} MiB)"


def test_a_reply_claiming_gigabytes_is_refused_before_it_is_held(cluster, tmp_path, peer):
    a = cluster.a(make_tree(tmp_path / "a", {"own": ""}), peer.endpoint)
    peer.accept()
    waiting = client(a.endpoint)
    request = peer.receive()
    peer.send(huge_frame_header(request.id, int(1.5 * GIB)))
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 3, err
    source = upstream_source(out)
    assert source["error"]["code"] == "timeout" and "--max-reply-bytes" in \
        source["error"]["message"]
    assert proc_status(a.pid, "VmHWM") < 100 << 10, "A held what the upstream announced"


def test_a_reply_that_arrives_in_time_is_used_while_the_own_listing_is_long(cluster,
                                                                           tmp_path, peer):
    """The upstream answers at once while A lists 200,000 entries of its own: both count."""
    root = tmp_path / "a"
    root.mkdir()
    for index in range(200_000):
        (root / f"f{index:06d}").touch()
    a = cluster.a(root, peer.endpoint)
    peer.accept()
    waiting = client(a.endpoint, "--unsorted")
    request = peer.receive()
    peer.send(good_reply(request.id))
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert upstream_source(out)["ok"] is True
    assert len(json.loads(out)["entries"]) == 200_000
