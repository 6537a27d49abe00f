"""What a relay does with an upstream's page fetched ahead (zdir/ahead.py), case by case."""

from __future__ import annotations

from zdir import ahead
from zdir.protocol import ReplyHeader, SourceStatus
from zdir.reliable import Call


def status(name: str, last, entries: int = 0, finished: bool = False) -> SourceStatus:
    return SourceStatus(name, True, entries=entries, last=last,
                        next=None if finished else b"more")


def done(*sources: SourceStatus, token=b"t", ok: bool = True) -> Call:
    call = Call(b"id", [], 0.0)
    call.done = True
    call.header = ReplyHeader(b"id", "list", ok, None if ok else {"code": "busy"},
                              tuple(sources), token=token, paged=True)
    return call


def test_the_next_horizon_is_the_smallest_position_of_the_unfinished_sources():
    finished = status("z", "a", finished=True)
    assert ahead.next_horizon([status("a", "m"), status("b", "c"), finished]) == "c"
    assert ahead.next_horizon([status("a", "m"), status("b", None)]) == ""  # b has sent nothing
    assert ahead.next_horizon([status("a", "m"), status("b", "c", finished=True)]) is None
    # recursive listings order component by component: "a/b" comes before "a-b"
    assert ahead.next_horizon([status("a", "a-b"), status("b", "a/b")]) == "a/b"


def test_a_source_waits_only_when_strictly_past_the_horizon():
    assert ahead.past_horizon("d", "c")
    assert not ahead.past_horizon("c", "c")
    assert not ahead.past_horizon(None, "")  # nothing sent yet: never held back
    assert ahead.past_horizon("a", "")
    assert not ahead.past_horizon("z", None)  # no horizon: nothing is held back


def test_a_page_is_used_when_no_source_in_it_is_held_back_now():
    before = (status("b", "c"),)
    assert ahead.verdict(before, done(status("b", "f", entries=3)), "c") == ahead.USE
    assert ahead.verdict(before, done(status("b", "f", entries=3)), None) == ahead.USE
    finished = done(status("b", "f", entries=3, finished=True), token=None)
    assert ahead.verdict(before, finished, "c") == ahead.USE


def test_a_page_for_a_source_held_back_now_is_kept_for_later():
    before = (status("b", "k"),)
    assert ahead.verdict(before, done(status("b", "p", entries=3)), "c") == ahead.HOLD


def test_a_page_mixing_held_and_wanted_sources_is_asked_again():
    before = (status("b", "k"), status("c", "b"))
    page = done(status("b", "p", entries=3), status("c", "f", entries=3))
    assert ahead.verdict(before, page, "c") == ahead.ASK
    # the same page, where only the wanted source sent entries, is used
    page = done(status("b", "k"), status("c", "f", entries=3))
    assert ahead.verdict(before, page, "c") == ahead.USE


def test_failed_busy_or_empty_pages_are_asked_again():
    before = (status("b", "c"),)
    failed = Call(b"id", [], 0.0)
    failed.done, failed.error = True, Exception("lost")  # type: ignore[assignment]
    assert ahead.verdict(before, failed, None) == ahead.ASK
    assert ahead.verdict(before, done(status("b", "c"), ok=False), None) == ahead.ASK
    assert ahead.verdict(before, done(status("b", "c")), None) == ahead.ASK  # held when asked


def test_a_page_still_on_its_way_is_waited_for_unless_held_back_now():
    before = (status("b", "c"), status("c", "k"))
    on_its_way = Call(b"id", [], 0.0)
    assert ahead.verdict(before, on_its_way, "z") == ahead.USE
    assert ahead.verdict(before, on_its_way, "a") == ahead.HOLD  # both held back
    assert ahead.verdict(before, on_its_way, "d") == ahead.ASK  # one of the two


def test_pages_ahead_are_bounded_in_number_and_time():
    kept = ahead.PagesAhead(lease=10.0, limit=2)
    for i in range(3):
        kept.keep("tcp://b", bytes([i]), Call(b"id", [], 0.0), (), now=float(i))
    assert len(kept) == 2 and kept.take("tcp://b", b"\x00") is None  # the oldest went
    kept.expire(now=11.5)
    assert kept.take("tcp://b", b"\x01") is None  # made at 1.0, leased until 11.0
    assert kept.take("tcp://b", b"\x02") is not None
    assert kept.take("tcp://b", b"\x02") is None  # taken once


def test_a_relay_not_asked_ahead_answers_for_a_held_back_upstream_or_asks_it():
    before = (status("b", "k"), status("c", "m"))
    assert ahead.verdict(before, None, "c") == ahead.HOLD  # both still held back
    assert ahead.verdict(before, None, "l") == ahead.ASK  # b may go on now


def test_one_source_is_fetched_ahead_whatever_the_horizon_several_as_the_client_holds_them():
    one = (status("b", "k"), status("gone", "a", finished=True))
    assert ahead.ahead_horizon(one, "c") == (True, None)
    several = (status("b", "k"), status("c", "a"))
    assert ahead.ahead_horizon(several, "c") == (True, "c")
    assert ahead.ahead_horizon(several, None) == (True, None)  # not merged in order
    held = (status("b", "k"), status("c", "m"))
    assert ahead.ahead_horizon(held, "c") == (False, "c")  # nothing to ask for now
