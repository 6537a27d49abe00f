"""Sort one directory's names in bounded memory: sorted runs packed as bytes, merged lazily.

A directory of a million entries read into Python strings costs about 75 bytes an
entry, 130 as ``(name, letter, info)`` tuples: 130 MB, where the names themselves
are 15. So a big directory is read in runs of ``RUN_ENTRIES`` rows: each run is
sorted and packed into blocks of UTF-8 bytes (about the names' own size), and the
runs are merged only as the listing is emitted, one small block of each at a time.
A directory of less than a run stays a plain sorted list: small listings cost
what they did.

A row is ``name + "\\0" + letter``. Names never hold NUL or '/', and NUL sorts below
every other character, so rows sort exactly as their names do (``"a\\0f" <
"a-b\\0f"`` as ``"a" < "a-b"``), and '/' can separate rows in a packed block.
Undecodable names (surrogate escapes) are packed with ``surrogatepass``.

Imports nothing of ours: the lister uses it, and it knows nothing of file systems.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import chain
from typing import Callable, Iterator, List, Optional, Tuple

RUN_ENTRIES = 65_536  # rows sorted together, then packed; a smaller directory stays a list
BLOCK_ENTRIES = 1_024  # rows per packed block: what each run holds unpacked while merging
TRIM_SLACK = 4_096  # rows read past twice the limit before trimming to it

Listed = Callable[[str], bool]
_Run = List[bytes]  # packed blocks, the last one first (popped, and so freed, in order)


def row(name: str, letter: str) -> str:
    """The row of a directory entry: sorts as its name does."""
    return name + "\0" + letter


def row_name(row: str) -> str:
    return row[:-2]


class SortedRows:
    """Rows added in any order, handed back once in order, in memory bounded by the limit.

    The walk stops at the ``keep``-th row that will be listed, so rows after it in
    order are dropped as soon as that can be known, and never more than about
    ``2 * keep`` rows are held. ``listed(row)`` says whether a row counts toward
    ``keep`` (None: all do; with a glob, a directory walked into but not listed
    does not).

    The reader appends to ``rows`` and calls ``settle()`` whenever
    ``len(rows) >= check_at`` (a method call per entry would cost more than the
    append), then takes ``rows`` and ``check_at`` afresh.
    """

    def __init__(self, keep: int, listed: Optional[Listed] = None) -> None:
        self.keep = max(keep, 1)
        self.listed = listed
        self.run_entries = max(RUN_ENTRIES, 1)  # read here, so a test may patch the module's
        self.rows: List[str] = []
        self.check_at = min(self.run_entries, 2 * self.keep + TRIM_SLACK)
        self.settled = False  # rows were trimmed or packed: the directory is not small
        self._runs: List[_Run] = []
        self._packed = 0  # rows in the runs
        self._compact_at = 2 * self.keep
        self._cutoff: Optional[str] = None  # the keep-th listed row of the runs, once known

    def settle(self) -> None:
        """Sort and trim the rows read so far; pack them as a run if they are still many."""
        self.settled = True
        rows = self.rows
        self._trim(rows)
        if rows and len(rows) >= self.run_entries // 2:  # else trimming keeps them few
            self._spill()
        self.check_at = min(self.run_entries, 2 * max(len(self.rows), self.keep) + TRIM_SLACK)

    def drain(self) -> Iterator[List[str]]:
        """Every kept row, in order, in batches released as they are handed on (call once).

        Batches, not rows: the lister handles a batch's names column by column.
        """
        rows = self.rows
        self.rows = []
        self._trim(rows)
        if not self._runs:
            return _batches(rows)
        if rows:
            self._runs.append(_pack(rows))
        runs, self._runs = self._runs, []
        return _cut(_merged(runs), self.keep, self.listed)

    def _trim(self, rows: List[str]) -> None:
        """Sort ``rows``, dropping those past the runs' cutoff and past their ``keep``-th listed."""
        rows.sort()
        if self._cutoff is not None:
            del rows[bisect_right(rows, self._cutoff):]
        if len(rows) <= self.keep:
            return
        listed = self.listed
        if listed is None:
            del rows[self.keep:]
            return
        count = 0
        for index, each in enumerate(rows):
            if listed(each):
                count += 1
                if count == self.keep:
                    del rows[index + 1:]
                    return

    def _spill(self) -> None:
        self._runs.append(_pack(self.rows))
        self._packed += len(self.rows)
        self.rows = []
        if self._packed > self._compact_at:
            self._compact()
            self._compact_at = 2 * max(self._packed, self.keep)

    def _compact(self) -> None:
        """Merge the runs into one that ends at their ``keep``-th listed row.

        Rows after it would never be reached, in these runs or in any read later
        (rows after the cutoff are dropped from then on). Runs are freed block by
        block as the merged one is packed.
        """
        runs, self._runs = self._runs, []
        listed, keep = self.listed, self.keep
        blocks: _Run = []
        block: List[str] = []
        count = packed = 0
        for each in chain.from_iterable(_merged(runs)):
            block.append(each)
            if len(block) == BLOCK_ENTRIES:
                blocks.append(_pack_block(block))
                packed += len(block)
                block = []
            if listed is None or listed(each):
                count += 1
                if count == keep:
                    self._cutoff = each
                    break
        if block:
            blocks.append(_pack_block(block))
            packed += len(block)
        blocks.reverse()
        self._runs = [blocks]
        self._packed = packed


def _pack_block(rows: List[str]) -> bytes:
    return "/".join(rows).encode("utf-8", "surrogatepass")


def _unpack_block(block: bytes) -> List[str]:
    return block.decode("utf-8", "surrogatepass").split("/")


def _pack(rows: List[str]) -> _Run:
    """Sorted rows as a run: blocks of ``BLOCK_ENTRIES``, the first block last."""
    size = max(BLOCK_ENTRIES, 1)
    blocks = [_pack_block(rows[start:start + size]) for start in range(0, len(rows), size)]
    blocks.reverse()
    return blocks


def _batches(rows: List[str]) -> Iterator[List[str]]:
    """Sorted rows a block at a time, each block freed from ``rows`` as it is handed on."""
    rows.reverse()
    size = max(BLOCK_ENTRIES, 1)
    while rows:
        batch = rows[-size:]
        del rows[-size:]
        batch.reverse()
        yield batch


def _cut(batches: Iterator[List[str]], keep: int,
         listed: Optional[Listed]) -> Iterator[List[str]]:
    """The batches up to and including their ``keep``-th listed row."""
    count = 0
    for batch in batches:
        more = len(batch) if listed is None else sum(map(listed, batch))
        if count + more < keep:
            count += more
            yield batch
            continue
        if listed is None:
            yield batch[:keep - count]
            return
        for index, each in enumerate(batch):
            if listed(each):
                count += 1
                if count == keep:
                    yield batch[:index + 1]
                    return


def _merged(runs: List[_Run]) -> Iterator[List[str]]:
    """The rows of sorted runs, merged, in batches; each run holds one block unpacked at a time.

    A merge by blocks rather than by rows (``heapq.merge``): every row up to the
    smallest last row of the unpacked blocks comes before anything still packed, so
    those rows are emitted together, sorted in C (sorting a few sorted pieces is a
    merge to timsort). Each round finishes at least one block.
    """
    heads = []  # [rows of the current block, index of the next one, the run's packed blocks]
    for blocks in runs:
        if blocks:
            heads.append([_unpack_block(blocks.pop()), 0, blocks])
    runs.clear()
    while heads:
        bound = min(head[0][-1] for head in heads)
        out: List[str] = []
        left = []
        for head in heads:
            rows, start, blocks = head
            cut = bisect_right(rows, bound, start)
            out += rows[start:cut] if start or cut < len(rows) else rows
            if cut < len(rows):
                head[1] = cut
                left.append(head)
            elif blocks:
                head[0], head[1] = _unpack_block(blocks.pop()), 0
                left.append(head)
        heads = left
        if len(out) > 1:
            out.sort()
        yield out


def split_rows(rows: List[str]) -> Tuple[List[str], str]:
    """A batch of rows as its names and its letters (one per name), split in C."""
    if not rows:
        return [], ""
    parts = "\0".join(rows).split("\0")  # name, letter, name, letter, ...
    return parts[0::2], "".join(parts[1::2])
