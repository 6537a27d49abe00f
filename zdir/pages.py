"""A paged listing for the client: page after page, the sources merged in order as they come.

Every source sends its entries in the listing order (``lister.order_key``), page by
page. ``Pages`` keeps what each source has sent but not yet been given out, and
gives out, after each page, every entry up to the smallest position among the
sources still unfinished: nothing that comes later can sort before it. The next
page is asked for as soon as a reply's header is read, before its entries are
decoded, so the servers work while the client writes (one page in flight).

Memory stays bounded: each request carries a ``horizon`` (the smallest position),
and a source already past it sends nothing until the others catch up, so no source
is more than one page ahead of what has been given out.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from .entries import Entries, Entry
from .lister import order_key
from .chunkframes import name_from_wire
from .protocol import Name, SourceStatus

if TYPE_CHECKING:
    from .client import Client, Reply


class _Source:
    """What one source has sent and not yet been given out."""

    __slots__ = ("rank", "batches", "key", "last", "finished")

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.batches: List[Entries] = []
        self.key: Any = None  # order key of the last entry received (None: none yet)
        self.last: Optional[Name] = None  # its wire name, from the source map
        self.finished = False


class Pages:
    """A listing asked for page by page; iterate it for ``Entry``, or ``batches()``.

    ``sources`` is one list, updated in place as pages arrive: each source's latest
    status, with ``entries`` counted over every page so far. The first page has been
    asked for, and its header read, when the object exists. Consume it once.
    """

    def __init__(self, client: "Client", path: Name, options: Dict[str, Any],
                 page_entries: Optional[int], page_ms: Optional[int] = None,
                 on_page: Optional[Callable[["Pages"], None]] = None,
                 ordered: bool = True) -> None:
        # ordered: entries come merged in the listing order, equal names together;
        # else each page's entries as they arrive (no merge, no horizon: -U, --ndjson).
        self.ordered = ordered
        self._client = client
        self._path = path
        self._ask = dict(options, page_entries=page_entries, page_ms=page_ms)
        self._key = order_key if options.get("recursive") else _name_key
        # A horizon ("" holds nothing back yet) tells relays the pages are merged in
        # order, so that what they fetch ahead is held back as this client will.
        first = self._ask if not ordered else dict(self._ask, horizon="")
        self._reply: Optional["Reply"] = client.send("list", path, **first)
        self.header = self._reply.header
        self.sources: List[SourceStatus] = []
        self._state: Dict[str, _Source] = {}
        self.on_page = on_page  # called after each page is read (a progress line)
        self.only: Optional[set] = None  # give out only these sources' entries (--source)
        self.pages = 0
        self._statuses(self._reply.header.sources)

    # -- reading pages ----------------------------------------------------------------------

    def _statuses(self, statuses: Tuple[SourceStatus, ...]) -> None:
        """Merge one page's source maps into ``sources`` and note who is finished."""
        self.pages += 1
        seen = set()
        for status in statuses:
            seen.add(status.name)
            state = self._state.get(status.name)
            if state is None:
                state = self._state[status.name] = _Source(len(self.sources))
                self.sources.append(status)
            else:
                old = self.sources[state.rank]
                if old.failed and not status.failed:  # a failure stays the source's story
                    status = old._replace(entries=old.entries)
                self.sources[state.rank] = status._replace(entries=old.entries + status.entries)
            state.finished = status.next is None
            if status.last is not None:
                state.last = status.last
        for name, state in self._state.items():
            if name not in seen:  # finished in an earlier page, or no longer asked
                state.finished = True

    def _horizon(self) -> Optional[Name]:
        """The smallest position among unfinished sources: sources past it wait."""
        lasts = [s for s in self._state.values() if not s.finished]
        if not lasts or len(self._state) == 1 or not self.ordered:
            return None
        if any(s.last is None for s in lasts):
            return ""  # one has sent nothing yet: everyone else waits for it
        return min((s.last for s in lasts), key=lambda n: self._key(name_from_wire(n)))  # type: ignore[arg-type, return-value]

    def _read(self, reply: "Reply") -> None:
        for source, chunk in reply.chunks():
            state = self._state.get(source)
            if state is None:  # chunks of a source the header did not name: not ours
                continue
            batch = Entries.from_chunk(source, chunk)
            if batch.names:
                state.key = self._key(batch.names[-1])
                if self.only is None or source in self.only:
                    state.batches.append(batch)

    # -- giving entries out -----------------------------------------------------------------

    def batches(self) -> Iterator[Entries]:
        """Entries in the listing order, a batch at a time, as pages arrive."""
        reply = self._reply
        self._reply = None
        while reply is not None:
            following = None
            token = reply.header.token
            if token is not None:  # ask for the next page before reading this one
                following = self._client.begin("list", self._path, token=token,
                                                horizon=self._horizon(), **self._ask)
            self._read(reply)
            if self.on_page is not None:
                self.on_page(self)
            yield from self._give(final=following is None)
            if following is None:
                return
            reply = self._client.complete(following)
            self._statuses(reply.header.sources)

    def _give(self, final: bool) -> Iterator[Entries]:
        bound = None
        if not self.ordered:  # as they arrive: each source's entries together
            for state in self._state.values():
                batches, state.batches = state.batches, []
                yield from batches
            return
        if not final:
            unfinished = [s for s in self._state.values() if not s.finished]
            if unfinished:
                if any(s.key is None for s in unfinished):
                    return
                bound = min(s.key for s in unfinished)
        ready = []
        for state in self._state.values():
            taken = self._take(state, bound)
            if taken:
                ready.append((state.rank, taken))
        if len(ready) == 1:
            yield from ready[0][1]
        elif ready:
            yield from self._merge(ready)

    def _take(self, state: _Source, bound: Any) -> List[Entries]:
        """The source's batches up to ``bound`` (all of them with None), cut off its buffer."""
        batches = state.batches
        if bound is None:
            state.batches = []
            return batches
        taken = []
        while batches:
            batch = batches[0]
            if self._key(batch.names[-1]) <= bound:
                taken.append(batches.pop(0))
                continue
            cut = bisect_right(batch.names, bound, key=self._key)
            if cut:
                taken.append(batch[:cut])
                batches[0] = batch[cut:]
            break
        return taken

    def _merge(self, ready: List[Tuple[int, List[Entries]]]) -> Iterator[Entries]:
        """Several sources' entries in order; equal names in the sources' order.

        One stable sort of the sources' runs laid end to end, in rank order: Timsort
        finds the runs and merges them in C, where a heap of a thousand sources' runs
        (a fleet) cost the client a second per hundred thousand entries.
        """
        merged = Entries([], "", None, None, None, [])
        types = []
        for _, batches in sorted(ready, key=lambda pair: pair[0]):
            for batch in batches:
                types.append(batch.types)
                merged._extend(batch)
        merged.types = "".join(types)
        merged.sort(key=None if self._key is _name_key else self._key)
        yield from merged.batches()

    def __iter__(self) -> Iterator[Entry]:
        for batch in self.batches():
            yield from batch

    def entries(self) -> Entries:
        """Every entry, in the listing order, in one ``Entries``."""
        merged = Entries([], "", None, None, None, [])
        types = []
        for batch in self.batches():
            types.append(batch.types)
            merged._extend(batch)
        merged.types = "".join(types)
        return merged


def _name_key(name: str) -> str:
    """A one-level listing's order: the names themselves (``order_key`` without the tuple)."""
    return name
