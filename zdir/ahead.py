"""Upstream pages fetched ahead: a relay asks for an upstream's next page before its client does.

A node answers a paged request with one page of each source. Its own source's next
page is made at once (``cursors.Cursor.ahead``); this module does the same for the
pages of its upstreams, so that no hop of a chain waits a round trip per page in
sequence. After a reply goes out, each upstream that sent entries and is not finished
is asked for its next page, with the token it just gave and the horizon the client is
going to send. The call is kept here under that token; the client's next request
carries the same token for that upstream and takes the call, done or still on its way.

The horizon only holds sources back (``past_horizon``), and it only grows from page
to page, so a page fetched ahead is the page the upstream would give to the client's
actual request, unless the client holds back a source this node did not (a relay
deeper in a chain sees only some of the sources). ``verdict`` tells these apart.
"""

from __future__ import annotations

import collections
from typing import Iterable, Optional, OrderedDict, Sequence, Tuple

from .lister import order_key
from .protocol import Name, SourceStatus
from .reliable import Call

LEASE = 30.0  # seconds a page fetched ahead is kept for the client's next request
LIMIT = 64  # pages kept ahead at once; the oldest is dropped beyond (as cursors.MAX_CURSORS)

#: What to do with a page fetched ahead when the client's request comes:
USE = "use"  # it is the page the request asks for
HOLD = "hold"  # every source in it is held back now: answer "nothing yet", keep it
ASK = "ask"  # neither: drop it and ask the upstream again (it resumes by name)


def past_horizon(after: Optional[Name], horizon: Optional[Name]) -> bool:
    """Whether a source standing at ``after`` waits for the others (sends nothing now)."""
    return (after is not None and horizon is not None
            and order_key(after) > order_key(horizon))


def next_horizon(sources: Iterable[SourceStatus]) -> Optional[Name]:
    """The horizon a client sends after a page with these source maps (``pages.Pages``).

    The smallest position among unfinished sources; ``""`` while one of them has sent
    nothing yet; None when at most one source is left to wait for.
    """
    unfinished = [s for s in sources if s.next is not None]
    if len(unfinished) < 2:
        return None
    if any(s.last is None for s in unfinished):
        return ""
    return min((s.last for s in unfinished), key=order_key)  # type: ignore[arg-type, return-value]


def verdict(before: Sequence[SourceStatus], call: Optional[Call],
            horizon: Optional[Name]) -> str:
    """``USE``, ``HOLD`` or ``ASK`` for a page fetched ahead (``call``; None: not asked).

    ``before``: the upstream's source maps in the page the client has (each source's
    position, ``last``); ``horizon``: the one the client's request carries now. A
    source held back now must get nothing in this page: the client's memory bound.
    """
    unfinished = {s.name for s in before if s.next is not None}
    held = {s.name for s in before if s.next is not None and past_horizon(s.last, horizon)}
    if call is None or not call.done:  # what it holds is not known (yet)
        if held and held == unfinished:
            return HOLD
        return USE if call is not None and not held else ASK
    header = call.header
    if call.error is not None or header is None or not header.ok:
        return ASK  # failed, busy, refused: a fresh request says what holds now
    sent = {s.name for s in header.sources if s.entries}
    if not sent and header.token is not None:
        return ASK  # nothing in it (held back when asked): the horizon has moved since
    if not held & sent:
        return USE
    return HOLD if sent <= held else ASK


def ahead_horizon(before: Sequence[SourceStatus], horizon: Optional[Name]
                  ) -> Tuple[bool, Optional[Name]]:
    """Whether to fetch an upstream's next page ahead, and with which horizon.

    ``before``: the upstream's source maps just answered; ``horizon``: the one the
    client will send next. One source: its next page whatever the horizon, kept until
    the client wants it. Several (a relay): held back as the client will hold them,
    and not asked at all when every one of them is held back.
    """
    unfinished = [s for s in before if s.next is not None]
    if len(unfinished) <= 1 or horizon is None:
        return True, None
    if all(past_horizon(s.last, horizon) for s in unfinished):
        return False, horizon
    return True, horizon


#: A call made ahead (None: not asked, every source held back), the upstream's source
#: maps it follows, and when it was made.
Kept = Tuple[Optional[Call], Tuple[SourceStatus, ...], float]


class PagesAhead:
    """Upstream calls made ahead, by (endpoint, token), with the source maps they follow."""

    def __init__(self, lease: float = LEASE, limit: int = LIMIT) -> None:
        self.lease = lease
        self.limit = limit
        self._items: OrderedDict[Tuple[str, bytes], Kept] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Tuple[str, bytes]) -> bool:
        return key in self._items

    def keep(self, endpoint: str, token: bytes, call: Optional[Call],
             before: Tuple[SourceStatus, ...], now: float) -> None:
        self._items[(endpoint, token)] = (call, before, now)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def take(self, endpoint: str, token: bytes) -> Optional[Kept]:
        return self._items.pop((endpoint, token), None)

    def next_expiry(self) -> Optional[float]:
        """When the oldest page kept ahead is dropped (None: none kept)."""
        oldest = next(iter(self._items.values()), None)
        return None if oldest is None else oldest[2] + self.lease

    def expire(self, now: float) -> None:
        """Drop what the client has not come back for (it stopped reading: ``| head``)."""
        while self._items:
            key, (_, _, made) = next(iter(self._items.items()))
            if now - made <= self.lease:
                return
            del self._items[key]
