"""A flood of recursive requests from one client, and a busy server (issue 10, item 6).

The flood's walks are endless (the FUSE cycle of ``tests/fusefs.py``), so whoever
holds a worker holds it until its deadline: only scheduling can keep room for the
others. The flooder must hear ``busy`` once its share of the queue is full, and a
client told ``busy`` must keep asking, with jittered pauses, over its whole deadline.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import List

import pytest
import zmq

from conftest import make_tree, wait_until
from fusefs import fusefs  # noqa: F401 (the fixture)
from zdir import protocol
from zdir.client import Client
from zdir.exchange import BUSY_BACKOFF, BUSY_BACKOFF_MAX
from zdir.errors import Unreachable
from zdir.protocol import ErrorCode

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="FUSE: Linux"),
]

PROMPT = 1.0  # seconds: a small listing beside the flood
FLOOD = 40  # requests the flooder sends without waiting
FLOOD_DEADLINE_MS = 4000


def test_a_flood_from_one_client_leaves_a_worker_for_everyone_else(
        cluster, fusefs, tmp_path, zmq_context):  # noqa: F811
    """40 endless ``-R`` walks at once from one DEALER; another client lists ``plain``.

    Before, the flood took every worker until its deadlines and the other client
    waited them out. Now one peer's walks leave a worker free, and the flooder
    hears ``busy`` past its share of the queue.
    """
    root = make_tree(tmp_path / "root", {"plain": {"p1": "x", "p2": "y"}})
    mount = fusefs(root / "fuse", "cycle")
    node = cluster.b(root)  # 4 workers, 64 queued at most
    flooder = zmq_context.socket(zmq.DEALER)
    flooder.connect(node.endpoint)
    ids = set()
    for i in range(FLOOD):  # each its own listing (its own glob), so none is joined
        request = protocol.Request("list", os.urandom(8), "fuse/loop", stat=False,
                                   recursive=True, glob=(f"*.none{i}",),
                                   deadline_ms=FLOOD_DEADLINE_MS)
        ids.add(request.id)
        flooder.send_multipart([b"", protocol.encode_request(request)])
    # The flood's walks have started: each reads the top of the cycle once.
    assert wait_until(lambda: mount.counts()["paths"].get("/loop", 0) >= 3), mount.counts()
    with Client(node.endpoint, timeout=3) as victim:
        started = time.monotonic()
        listing = victim.list("plain")
        took = time.monotonic() - started
    assert listing.complete, listing.sources
    assert sorted(e.name for e in listing.entries) == ["p1", "p2"]
    assert took < PROMPT, took
    codes = flood_replies(flooder, ids, timeout=FLOOD_DEADLINE_MS / 1000 + 5)
    assert codes.count(ErrorCode.BUSY) >= FLOOD // 4, codes  # its share of the queue is full
    assert set(codes) == {ErrorCode.BUSY, ErrorCode.TIMEOUT}, codes  # the rest: partial


def flood_replies(sock: zmq.Socket, ids: set, timeout: float) -> List[str]:
    """Each request's outcome: ``busy``, or the code of its only source (a partial answer)."""
    codes = []
    ends = time.monotonic() + timeout
    while ids and sock.poll(max(0, int((ends - time.monotonic()) * 1000))):
        frames = sock.recv_multipart()
        header = protocol.decode_header(frames[1])
        ids.discard(header.id)
        codes.append(header.code or header.sources[0].code)
    assert not ids, f"{len(ids)} flood requests got no reply: {codes}"
    return codes


def test_busy_retries_spread_over_the_deadline_with_jitter(zmq_context):
    """A server that always says ``busy``: the client asks until its deadline, pausing
    longer each time, never twice the same (the old client: 3 attempts in 0.6 s)."""
    server = zmq_context.socket(zmq.ROUTER)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    arrivals: List[float] = []
    stop = threading.Event()

    def always_busy() -> None:
        while not stop.is_set():
            if not server.poll(50):
                continue
            peer, empty, body = server.recv_multipart()
            arrivals.append(time.monotonic())
            request = protocol.decode_request([body])
            reply = protocol.error_reply(request.id, request.op, ErrorCode.BUSY, "busy, sorry")
            server.send_multipart([peer, empty, *reply])

    answering = threading.Thread(target=always_busy, daemon=True)
    answering.start()
    timeout = 4.0
    started = time.monotonic()
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=timeout) as client:
            with pytest.raises(Unreachable) as gave_up:
                client.list("")
    finally:
        stop.set()
        answering.join(5)
    took = time.monotonic() - started
    assert gave_up.value.code == ErrorCode.BUSY and "busy" in str(gave_up.value)
    # It gives up when the next pause would pass its deadline, and no pause is longer
    # than 1.5 * BUSY_BACKOFF_MAX: so not before that much is left.
    assert timeout - 1.5 * BUSY_BACKOFF_MAX <= took <= timeout + 1.0, took
    # Pauses double from BUSY_BACKOFF, times 0.5 to 1.5: 4 s hold 6 attempts at the fewest.
    assert len(arrivals) >= 6, arrivals
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    assert gaps[0] < 4 * BUSY_BACKOFF < 8 * BUSY_BACKOFF < max(gaps), gaps  # growing
    ratios = [later / earlier for earlier, later in zip(gaps, gaps[1:5])]
    assert any(abs(ratio - 2) > 0.2 for ratio in ratios), ratios  # not an exact doubling
