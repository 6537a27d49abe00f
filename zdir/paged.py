"""The paged part of a node (docs/protocol.md, *Pages*): cursors, pages, composed tokens.

A mixin of ``node.Node``, run by its loop only. A paged request's own part is its
cursor's next page: one already made (``ahead``), the one being made, or a new walk
(from the token's position when its cursor is gone); after each page is answered,
the next one is made already. ``_token`` composes the reply's position: this node's
own and each unfinished upstream's.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, FrozenSet, List, Optional, Tuple

from . import chunkframes, protocol, tokens
from .ahead import past_horizon
from .cursors import Cursor, Page
from .lister import Options, order_key
from .protocol import ErrorCode, SourceStatus, error_dict
from .walks import Walk, ms_since

if TYPE_CHECKING:
    from .node import Node
    from .pending import Pending

    _Base = Node
else:
    _Base = object


class PagedListings(_Base):
    """The methods of ``Node`` that serve paged ``list`` requests."""

    def _start_page(self, pending: Pending, peer: bytes) -> bool:
        """The own part of a paged request: its cursor's next page, or a wait for it."""
        request, token, now = pending.request, pending.token, pending.arrived
        name = self.cfg.name
        if token is not None and token.done:  # finished in an earlier page
            pending.own, pending.position = (SourceStatus(name, True), []), (None, None, True)
            return True
        after = token.after if token is not None else None
        options = self._options(request)._replace(after=())
        if token is None and self._first_page_kept(pending, options):
            return True  # small, and kept: one page, from memory
        key = (chunkframes.name_from_wire(request.path), *options)
        mine = token is not None and token.node_id == self.node_id
        asked = token.cursor if mine else None  # type: ignore[union-attr]
        cursor = self.cursors.find(asked, key, after, now)
        if token is None:
            cursor = self.cursors.joinable(key)
        if past_horizon(after, request.horizon):
            # Past the client's horizon: another source must catch up first.
            kept = cursor.id if cursor is not None else None
            own = tokens.Token(request.path, self.node_id, kept, after)
            status = SourceStatus(name, True, next=tokens.encode_token(own), last=after)
            pending.own, pending.position = (status, []), (kept, after, False)
            return True
        if cursor is None:
            workers = self.workers
            waiting = workers.queued - workers.idle  # type: ignore[union-attr]
            fair_share = max(1, self.cfg.max_pending // 4)
            if waiting >= self.cfg.max_pending or workers.queued_for(peer) >= fair_share:  # type: ignore[union-attr]
                return False
            cursor = Cursor(key, options._replace(after=order_key(after) if after else ()),
                            after)
            cursor.request = request
            self.cursors.add(cursor)
        pending.cursor = cursor
        if cursor.ahead is not None:  # made while the client read the last page
            page, cursor.ahead = cursor.ahead, None
            self._deliver(pending, page)
            self._advance(cursor, page, peer)
            return True
        if cursor.job is None:
            self._page_job(cursor, request, peer)
        walk = cursor.job
        walk.waiters += 1
        pending.walk = walk
        self._walk_waiters.setdefault(walk.token, []).append(pending)
        return True

    def _first_page_kept(self, pending: Pending, options: Options) -> bool:
        """The whole listing in one first page, from an exact kept listing that fits in it.

        Kept by an unpaged listing (whole, unless it stopped at ``--max-entries``) or
        by a paged one that ended in its first page: their frames differ, not entries.
        """
        limit = min(options.page_entries, self.cfg.max_entries - 1)
        whole = self._options(pending.request._replace(page_entries=None, page_ms=None,
                                                       token=None, horizon=None))
        return self._kept(pending, whole, limit) or self._kept(pending, options, limit)

    def _page_job(self, cursor: Cursor, request: protocol.Request, peer: bytes) -> None:
        walk = Walk(("page", cursor.id, os.urandom(4)), request, peer, os.urandom(8))
        walk.cursor = cursor
        cursor.job = walk
        self.workers.enqueue(walk)  # type: ignore[union-attr]

    def _deliver(self, pending: Pending, page: Page) -> None:
        """A page of the own walk becomes this request's own source map and chunks."""
        cursor = pending.cursor
        assert cursor is not None
        if page.entries:
            cursor.sent = page.last
        name = self.cfg.name
        if page.finished:
            status = (cursor.status or SourceStatus(name, True))._replace(next=None)
            pending.position = (None, cursor.sent, True)
        else:
            own = tokens.Token(pending.request.path, self.node_id, cursor.id, cursor.sent)
            status = SourceStatus(name, True, next=tokens.encode_token(own))
            pending.position = (cursor.id, cursor.sent, False)
        pending.own = (status._replace(entries=page.entries, last=cursor.sent,
                                       elapsed_ms=ms_since(pending.arrived)), page.frames)

    def _advance(self, cursor: Cursor, page: Page, peer: bytes) -> None:
        """After a page is answered: list the next one already, or end a finished walk."""
        cursor.used = time.monotonic()
        if page.finished:
            self.cursors.drop(cursor)
        elif not cursor.dropped and cursor.job is None:
            self._page_job(cursor, cursor.request, peer)

    def _page_done(self, walk: Walk) -> None:
        """A worker made a page: answer who waits for it, or keep it for the next request."""
        cursor, page = walk.cursor, walk.page
        assert cursor is not None and page is not None
        cursor.job = None
        waiters = [p for p in self._walk_waiters.pop(walk.token, []) if p.own is None]
        if cursor.dropped:  # expired or given up while the page was made
            cursor.close()
            for pending in waiters:
                pending.own = self._gone(pending)
        elif waiters:
            for pending in waiters:  # the same token twice (a retry): the same page
                self._deliver(pending, page)
            self._advance(cursor, page, walk.peer)
        else:
            cursor.ahead = page
            cursor.used = time.monotonic()
        for pending in waiters:
            if pending.complete:
                self._finish(pending)

    def _snapshot(self, pending: Pending, now: float) -> Tuple[SourceStatus, List[bytes]]:
        """A page still being made at the deadline: what it has, and the source ends there.

        As for an unpaged walk (``Walk.snapshot``), that includes the entries gathered
        for the next chunk; the cursor is given up, so nothing is sent twice.
        """
        walk, cursor = pending.walk, pending.cursor
        assert walk is not None and cursor is not None
        pending.position = (None, None, True)
        page = walk.page
        frames = page.frames[:] if page is not None else []
        entries = sum(page.counts[:len(frames)]) if page is not None else 0
        listing = cursor.listing
        if page is not None and listing is not None:
            taken, gathered = listing.gathered()
            if gathered is not None and taken == page.base + len(frames):
                frames.append(chunkframes.encode_chunk(self.cfg.name, gathered))
                entries += len(gathered.names)
        if walk.started is None:
            why = "no worker was free before the deadline (the node is busy)"
        else:
            why = "the listing was still running at the deadline (a slow or hung file system?)"
        status = SourceStatus(self.cfg.name, True, error=error_dict(ErrorCode.TIMEOUT, why),
                              entries=entries, truncated=True,
                              elapsed_ms=round((now - pending.arrived) * 1000.0, 3))
        return status, frames

    def _gone(self, pending: Pending) -> Tuple[SourceStatus, List[bytes]]:
        """The own part when its cursor was given up under a request: a failed source."""
        pending.position = (None, None, True)
        return (SourceStatus(self.cfg.name, True, error=error_dict(
            ErrorCode.TIMEOUT, "the listing's page was not ready by the deadline (a slow or "
            "hung file system, or every worker busy)"), truncated=True,
            elapsed_ms=ms_since(pending.arrived)), [])

    def _token(self, pending: Pending) -> Tuple[Optional[bytes], FrozenSet[str]]:
        """The whole listing's position at this node: its own, and each unfinished upstream's.

        Also the upstreams that did not fit: a token is at most MAX_TOKEN_BYTES, and
        those whose positions would make it longer end in this page (``cut_off``).
        """
        cursor_id, after, done = pending.position
        upstreams = [
            (call.link.endpoint, call.header.token) for call in pending.calls  # type: ignore[union-attr]
            if call.error is None and call.header is not None and call.header.ok
            and call.header.token is not None]
        cut: List[str] = []
        while True:
            if done and not upstreams:
                return None, frozenset(cut)
            token = tokens.encode_token(tokens.Token(
                pending.request.path, self.node_id, cursor_id, after, done, tuple(upstreams)))
            excess = len(token) - protocol.MAX_TOKEN_BYTES
            if excess <= 0 or not upstreams:
                return token, frozenset(cut)
            upstreams.sort(key=lambda pair: len(pair[0]) + len(pair[1]))
            while upstreams and excess > 0:  # the longest first: as few as can be cut
                endpoint, position = upstreams.pop()
                excess -= len(endpoint) + len(position)
                cut.append(endpoint)


def cut_off(status: SourceStatus) -> SourceStatus:
    """An upstream source whose position did not fit in the token: it ends in this page."""
    if status.next is None:
        return status
    return status._replace(next=None, truncated=True, error=error_dict(
        ErrorCode.LIMIT_EXCEEDED, f"its position did not fit in the page token (at most "
        f"{protocol.MAX_TOKEN_BYTES} bytes, with every unfinished upstream's): too many "
        "upstreams or too long names for paging; list fewer sources, or with --page-entries 0"))

