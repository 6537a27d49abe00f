"""The upstream side of a node: its links, the upstreams file, asking and absorbing.

A mixin of ``node.Node``, run by its loop only. Each upstream is one ``Link``: a
request is forwarded to every upstream with a fresh id, the trail extended and what
is left of the deadline; each answer becomes source maps and chunk frames relayed
untouched, with the manifest (``via``, ``behind``) that says who asked whom.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from . import ahead, chunkframes, config, protocol, reliable, tokens
from .errors import ProtocolError, UsageError
from .protocol import ErrorCode, SourceStatus, error_dict
from .reliable import Call, Link
from .walks import MAX_THREADS_FACTOR

if TYPE_CHECKING:
    from .node import Node
    from .nodeconfig import NodeConfig
    from .pending import Pending

    _Base = Node
else:
    _Base = object

log = logging.getLogger(__name__)

CLIENT_DESCRIPTORS = 1024  # file descriptors kept for client connections, at the least
NO_TIME_LEFT = "the request's deadline had passed when it reached this node"


class Upstreams(_Base):
    """The methods of ``Node`` that keep its upstream links and talk over them."""

    _heartbeat_ms = reliable.HEARTBEAT_IVL_MS  # set by _wanted_upstreams

    def reload(self) -> None:
        """Re-read the upstreams file soon (from a signal handler: the loop does the work)."""
        self._reload = True
        self._wake()

    def _wanted_upstreams(self) -> List[config.Upstream]:
        """Every upstream to link to; their number sets the links' heartbeat interval."""
        wanted = list(self.cfg.upstreams)
        if self.cfg.upstreams_file:
            known = {u.endpoint for u in wanted}
            wanted += [u for u in config.read_upstreams(self.cfg.upstreams_file)
                       if u.endpoint not in known]
        self._heartbeat_ms = reliable.heartbeat_ivl_ms(len(wanted))
        return wanted

    def _link(self, upstream: config.Upstream) -> Link:
        """A link to ``upstream``, its heartbeats spaced as ``_wanted_upstreams`` last said
        (links kept over a SIGHUP keep the interval they were made with)."""
        link = Link(self.context, upstream.endpoint, name=upstream.name,
                    setup=self.cfg.upstream_setup, max_reply_bytes=self.cfg.max_reply_bytes,
                    heartbeat_ms=self._heartbeat_ms)
        self.exchange.add(link)
        return link

    def _reload_upstreams(self) -> None:
        """SIGHUP: the upstreams file again. Requests in flight to upstreams kept go on."""
        self._reload = False
        if not self.cfg.upstreams_file:
            log.info("SIGHUP: nothing to re-read (no --upstreams-file)")
            return
        try:
            wanted = self._wanted_upstreams()
        except UsageError as exc:
            log.error("SIGHUP: %s; keeping the %d upstreams in use", exc, len(self.links))
            return
        current = {link.endpoint: link for link in self.links}
        links = []
        for upstream in wanted:
            link = current.pop(upstream.endpoint, None)
            if link is None:
                link = self._link(upstream)
            elif upstream.name:
                link.name = upstream.name
            links.append(link)
        for gone in current.values():
            self._calls_done(self.exchange.remove(gone))
        added = len(links) - (len(self.links) - len(current))
        self.links = links
        log.info("SIGHUP: %d upstreams (%d added, %d removed)", len(links), added, len(current))

    def _ask_upstreams(self, pending: Pending, now: float) -> None:
        """One call per upstream, over its link, within what is left of the deadline."""
        if not self.links:
            return
        request = pending.request
        links = self.links
        tokens: Dict[str, bytes] = {}
        if pending.token is not None:  # a later page: only the unfinished upstreams
            tokens = dict(pending.token.upstreams)
            links = [link for link in links if link.endpoint in tokens]
        remaining_ms = max(0, int((pending.deadline - now) * 1000))
        failure = None
        if len(request.trail) >= protocol.MAX_TRAIL:
            failure = reliable.Failure(
                ErrorCode.LIMIT_EXCEEDED,
                f"not asked: the request has passed {protocol.MAX_TRAIL} nodes already, "
                "the most a trail holds")
        elif remaining_ms == 0:
            failure = reliable.Failure(ErrorCode.TIMEOUT, f"not asked: {NO_TIME_LEFT}")
        if failure is not None:
            for link in links:
                call = Call(os.urandom(8), [], now, owner=pending)
                call.link = link
                call.error, call.done = failure.error(link.endpoint, 0.0), True
                pending.calls.append(call)
            return
        onward = self._onward(request, remaining_ms)
        for link in links:
            if request.paged:
                token = tokens.get(link.endpoint)
                if token is not None and self._take_ahead(pending, link, token, now):
                    continue
                onward = onward._replace(token=token)
            # Checked when it came in; only our trail entry, deadline and tokens changed.
            self._call(link, onward, pending.deadline, pending, now, checked=True)

    def _onward(self, request: protocol.Request, remaining_ms: int) -> protocol.Request:
        """The request as this node forwards it: its trail extended, its own deadline."""
        onward = request._replace(trail=request.trail + (self.node_id,),
                                  deadline_ms=remaining_ms)
        if request.page_ms is not None:  # leave the upstreams' pages time to travel
            onward = onward._replace(page_ms=max(1, request.page_ms * 4 // 5))
        return onward

    def _call(self, link: Link, onward: protocol.Request, deadline: float,
              owner: Optional[Pending], now: float, *, checked: bool = False) -> Call:
        """Ask ``link``; ``checked``: ``onward`` is a checked request's onward copy."""
        request_id = os.urandom(8)  # fresh per upstream call: ids are ours to match
        frames = [protocol.encode_request(onward._replace(id=request_id), checked=checked)]
        call = Call(request_id, frames, deadline, retries=self.cfg.upstream_retries,
                    owner=owner)
        if owner is not None:  # before it starts: it may fail at once
            owner.calls.append(call)
        self._calls_done(self.exchange.start(link, call, now))
        return call

    # -- pages fetched ahead (zdir/ahead.py) --------------------------------------------

    def _fetch_ahead(self, pending: Pending, reply: protocol.ReplyHeader, now: float) -> None:
        """A paged reply went out: ask each upstream its token carries for its next page."""
        request = pending.request
        if reply.token is None or len(request.trail) >= protocol.MAX_TRAIL:
            return
        carried = dict(tokens.decode_token(reply.token, request.path).upstreams)
        budget = pending.deadline - pending.arrived  # as much time as this page had
        onward = self._onward(request, max(1, int(budget * 1000)))
        # Merged in order (the client sends a horizon): the one it will send next.
        horizon = ahead.next_horizon(reply.sources) if request.horizon is not None else None
        for call in pending.calls:
            header = call.header
            if call.error is not None or header is None or not header.ok or header.token is None:
                continue  # finished or failed: nothing to fetch ahead
            link = call.link
            assert link is not None
            if (carried.get(link.endpoint) != header.token or link not in self.links
                    or (link.endpoint, header.token) in self.ahead):
                continue  # cut off, removed by SIGHUP meanwhile, or held back: fetched already
            ask, held_at = ahead.ahead_horizon(header.sources, horizon)
            following = None
            if ask:
                following = self._call(link, onward._replace(token=header.token,
                                                             horizon=held_at),
                                       now + budget, None, now)
            self.ahead.keep(link.endpoint, header.token, following, header.sources, now)

    def _take_ahead(self, pending: Pending, link: Link, token: bytes, now: float) -> bool:
        """Serve this upstream's part from a page fetched ahead, if there is one that fits."""
        kept = self.ahead.take(link.endpoint, token)
        if kept is None:
            return False
        call, before, _ = kept
        judged = ahead.verdict(before, call, pending.request.horizon)
        if judged == ahead.USE:
            assert call is not None
            call.owner = pending
            pending.calls.append(call)
            return True
        if judged == ahead.ASK:
            return False
        # HOLD: what the upstream would say to this request: nothing yet, same positions.
        self.ahead.keep(link.endpoint, token, call, before, now)
        held = Call(os.urandom(8), [], pending.deadline, owner=pending)
        held.link, held.done = link, True
        held.header = protocol.ReplyHeader(
            held.id, "list", True, sources=tuple(s._replace(entries=0, elapsed_ms=0.0)
                                                 for s in before), token=token, paged=True)
        pending.calls.append(held)
        return True

    def _absorb(self, call: Call) -> Tuple[List[SourceStatus], List[object]]:
        """One upstream's answer as source maps and chunk frames to relay untouched."""
        link = call.link
        assert link is not None
        elapsed = round(call.elapsed * 1000.0, 3)

        def failed(code: str, message: str) -> Tuple[List[SourceStatus], List[object]]:
            status = SourceStatus(link.name, False, link.endpoint, error_dict(code, message),
                                  elapsed_ms=elapsed, via=self.cfg.name,
                                  behind=link.behind if link.behind > 1 else None)
            return [status], []

        if call.error is not None:
            return failed(call.error.code, call.error.message)
        header = call.header
        assert header is not None
        if not header.ok or not header.sources:
            error = header.error or error_dict(ErrorCode.BAD_REPLY, "the reply names no source")
            return failed(error["code"], f"{link.endpoint}: {error['message']}")
        first = header.sources[0]
        first = first._replace(endpoint=first.endpoint or link.endpoint, via=self.cfg.name)
        statuses, renamed = [], {}
        for status in (first, *header.sources[1:]):
            shown = self.source_names.shown(
                (link.endpoint, status.name, status.endpoint, status.via), status.endpoint)
            if shown != status.name:
                renamed[status.name] = shown
                status = status._replace(name=shown)
            statuses.append(status)
        link.name, link.behind = statuses[0].name, len(statuses)
        chunks = list(call.chunks)
        if renamed:
            chunks = [_renamed(chunk, renamed) for chunk in chunks]
        return statuses, chunks


def _renamed(chunk: object, renamed: Dict[str, str]) -> object:
    """A chunk frame under its source's shown name (others, and garbage, pass as they are)."""
    frame = getattr(chunk, "bytes", chunk)  # a zmq.Frame, or bytes
    try:
        source, _ = chunkframes.chunk_source(frame)  # type: ignore[arg-type]
    except ProtocolError:
        return chunk  # the client refuses it, as it would have
    shown = renamed.get(source)
    return chunk if shown is None else chunkframes.renamed_chunk(frame, shown)  # type: ignore[arg-type]


def sockets_needed(cfg: NodeConfig, upstreams: int) -> int:
    """ZeroMQ sockets a node opens: three per upstream (a link and its monitor pair), one
    per worker thread, and a few of its own."""
    return 3 * upstreams + cfg.workers * MAX_THREADS_FACTOR + 16


def descriptors_needed(cfg: NodeConfig, upstreams: int) -> int:
    """File descriptors: a mailbox per socket, a connection per upstream, room for clients."""
    return sockets_needed(cfg, upstreams) + upstreams + CLIENT_DESCRIPTORS
