"""The listing cache without a node: what it keeps, for how long, and what it evicts."""

from __future__ import annotations

import time

import pytest

from zdir.cache import SETTLE, ListingCache

pytestmark = pytest.mark.timeout(30)

NOW = time.time()
OLD_NS = int((NOW - SETTLE - 10) * 1e9)
OLD = (1, 42, OLD_NS, OLD_NS)  # st_dev, st_ino, st_mtime_ns, st_ctime_ns


def test_serves_what_it_kept_while_the_stamp_matches():
    cache = ListingCache(1 << 20, stat_ttl=60)
    cache.put("k", OLD, False, [b"one", b"two"], entries=7)
    kept = cache.get("k", OLD)
    assert kept is not None and kept.chunks == (b"one", b"two") and kept.entries == 7
    changed = OLD[:2] + (OLD_NS + 1, OLD_NS + 1)
    assert cache.get("k", changed) is None
    assert cache.get("k", OLD) is None  # a stale entry is dropped, not kept for later
    assert cache.bytes == 0


def test_a_directory_changed_within_the_settle_time_is_not_kept():
    cache = ListingCache(1 << 20, stat_ttl=60)
    assert cache.worth_keeping(OLD, with_stat=True, began=NOW)
    recent_ns = int((NOW - SETTLE / 2) * 1e9)
    assert not cache.worth_keeping(OLD[:2] + (recent_ns, OLD_NS), with_stat=False, began=NOW)
    assert not cache.worth_keeping(OLD[:2] + (OLD_NS, recent_ns), with_stat=False, began=NOW)


def test_stat_listings_expire_and_a_zero_ttl_keeps_none():
    cache = ListingCache(1 << 20, stat_ttl=0.05)
    cache.put("stat", OLD, True, [b"x"], entries=1)
    cache.put("names", OLD, False, [b"y"], entries=1)
    assert cache.get("stat", OLD) is not None
    time.sleep(0.06)  # the expiry itself is what is tested: there is no event to wait for
    assert cache.get("stat", OLD) is None
    assert cache.get("names", OLD) is not None
    assert not ListingCache(1 << 20, stat_ttl=0).worth_keeping(OLD, with_stat=True, began=NOW)
    assert not ListingCache(0, stat_ttl=60).worth_keeping(OLD, with_stat=False, began=NOW)


def test_least_recently_used_go_first_and_oversized_are_refused():
    cache = ListingCache(10, stat_ttl=60)
    cache.put("a", OLD, False, [b"aaaa"], entries=1)
    cache.put("b", OLD, False, [b"bbbb"], entries=1)
    assert cache.get("a", OLD) is not None  # a is now the most recently used
    cache.put("c", OLD, False, [b"cccc"], entries=1)
    assert cache.get("b", OLD) is None and cache.get("a", OLD) is not None
    cache.put("huge", OLD, False, [b"x" * 11], entries=1)
    assert cache.get("huge", OLD) is None and cache.bytes == 8
