"""RateLimitedLog: one line per key per interval, the rest counted, memory bounded."""

from __future__ import annotations

import logging

import pytest

from zdir.lograte import RateLimitedLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(caplog):
    caplog.set_level(logging.INFO, logger="zdir.test.lograte")
    clock = Clock()
    return RateLimitedLog(logging.getLogger("zdir.test.lograte"), interval=10, max_keys=3,
                          clock=clock), clock, caplog


def test_one_line_per_key_per_interval_then_the_count(limited):
    log, clock, caplog = limited
    assert log.warning(("refused", "k1"), "refused client %s", "1.2.3.4")
    for _ in range(41):
        clock.now += 0.1
        assert not log.warning(("refused", "k1"), "refused client %s", "1.2.3.4")
    clock.now = 1010.0
    assert log.warning(("refused", "k1"), "refused client %s", "1.2.3.4")
    assert [r.getMessage() for r in caplog.records] == [
        "refused client 1.2.3.4",
        "refused client 1.2.3.4 (and 41 more like it in the last 10s)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_keys_are_independent(limited):
    log, clock, caplog = limited
    assert log.info("a", "first a")
    assert log.info("b", "first b")
    assert not log.info("a", "again a")
    assert [r.getMessage() for r in caplog.records] == ["first a", "first b"]


def test_memory_is_bounded_and_the_oldest_key_forgotten(limited):
    log, clock, caplog = limited
    for key in "abcd":  # max_keys is 3: "a" is forgotten when "d" comes
        assert log.info(key, "line %s", key)
    assert len(log._seen) == 3
    assert log.info("a", "line a")  # forgotten, so logged again at once
    assert not log.info("c", "line c")


def test_a_disabled_level_is_neither_logged_nor_counted(limited):
    log, clock, caplog = limited
    assert not log.log(logging.DEBUG, "k", "debug")
    assert log.info("k", "info")  # the debug call did not start the key's interval
