"""A bounded load test: several clients, many requests, B killed and restarted twice meanwhile.

Every request must end complete (0) or partial (3): none hangs, none is unreachable
(4), and A's memory is the same at the end as after the warm-up.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter

import pytest

from conftest import make_tree, rss_kib, unused_tcp_endpoint, wait_until
from zdir.client import Client
from zdir.errors import EXIT_OK, EXIT_PARTIAL, ZdirError, exit_code

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for memory"),
]

CLIENTS = 4
WARM_UP_REQUESTS = 1000  # RSS settles after a few hundred requests
STEADY_SECONDS = 2.5  # between the faults
#: How long B stays dead: shorter than A's reconnect backoff, then several times longer.
#: Either way A sees B refuse or vanish at once and answers partial: no request waits
#: for a deadline (60 s by default), so the whole test stays short.
DOWN_SECONDS = (0.5, 3.0)
#: A client that has not ended its request by then hangs.
HANG_SECONDS = 15.0
RSS_GROWTH_LIMIT_KIB = 4 * 1024


class Load:
    """CLIENTS threads, each with its own Client, asking A in a loop until stopped."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: Counter = Counter()
        self.slowest = 0.0
        self.failures: list = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    @property
    def count(self) -> int:
        with self.lock:
            return sum(self.outcomes.values())

    def _run(self) -> None:
        with Client(self.endpoint) as client:  # the defaults, as a user gets them
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    listing = client.list("")
                    code = EXIT_OK if listing.complete else EXIT_PARTIAL
                except ZdirError as exc:
                    code = exit_code(exc)
                    with self.lock:
                        self.failures.append(repr(exc))
                elapsed = time.monotonic() - started
                with self.lock:
                    self.outcomes[code] += 1
                    self.slowest = max(self.slowest, elapsed)

    def finish(self, timeout: float) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "a client hangs"


def test_clients_keep_getting_answers_while_b_dies_twice(cluster, tmp_path):
    a_root = make_tree(tmp_path / "a", {f"a{i}": "x" for i in range(50)})
    b_root = make_tree(tmp_path / "b", {f"b{i}": "x" for i in range(50)})
    b_endpoint = unused_tcp_endpoint()
    b = cluster.b(b_root, bind=b_endpoint)
    a = cluster.a(a_root, b_endpoint)
    load = Load(a.endpoint)
    load.start()
    try:
        assert wait_until(lambda: load.count >= WARM_UP_REQUESTS, timeout=30)
        rss_before, count_before = rss_kib(a.pid), load.count
        for down in DOWN_SECONDS:
            time.sleep(STEADY_SECONDS)
            os.kill(b.pid, signal.SIGKILL)
            b.proc.wait(5)
            time.sleep(down)
            b = cluster.b(b_root, bind=b_endpoint)
        time.sleep(STEADY_SECONDS)
    finally:
        load.finish(timeout=HANG_SECONDS)
    rss_after = rss_kib(a.pid)

    print(f"\nload: {load.count} requests ({load.count - count_before} during the faults), "
          f"outcomes {dict(load.outcomes)}, slowest {load.slowest:.2f}s, "
          f"A's RSS {rss_before} KiB -> {rss_after} KiB")
    assert set(load.outcomes) <= {EXIT_OK, EXIT_PARTIAL}, load.failures[:5]
    assert load.outcomes[EXIT_PARTIAL] >= CLIENTS, "the long outage shows as partial answers"
    assert load.outcomes[EXIT_OK] > WARM_UP_REQUESTS
    assert load.slowest < HANG_SECONDS, "a dead B is answered as partial, not waited for"
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_KIB
    with Client(a.endpoint) as client:
        assert client.list("").complete, "complete again once B is back, A never restarted"
    assert "Traceback" not in a.log()
