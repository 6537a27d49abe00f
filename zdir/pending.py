"""A request being served by the node's loop: its record, its reply margin, its REQ envelope."""

from __future__ import annotations

from typing import List, Optional, Tuple

from . import protocol, tokens
from .cursors import Cursor
from .protocol import SourceStatus
from .reliable import Call
from .walks import Walk


def reply_margin(budget: float) -> float:
    """Time kept back from a request's deadline to build and send its reply (a partial
    reply of many entries takes a while to cross a loaded machine or network)."""
    return min(1.0, 0.1 * budget)


class Pending:
    """A request being served: its own part (a walk, or a status), and one call per upstream."""

    __slots__ = ("envelope", "request", "arrived", "deadline", "parts", "own", "walk",
                 "calls", "token", "cursor", "position")

    def __init__(self, envelope: list, request: protocol.Request, arrived: float,
                 deadline: float) -> None:
        self.envelope = envelope
        self.request = request
        self.arrived = arrived
        self.deadline = deadline
        self.parts: Tuple[str, ...] = ()  # a listing's path, split (lister.split_path)
        self.own: Optional[Tuple[SourceStatus, List[bytes]]] = None
        self.walk: Optional[Walk] = None
        self.calls: List[Call] = []
        # Paged requests: the token they came with, the cursor serving the own part,
        # and the own part's position after this page: (cursor id, last name, finished).
        self.token: Optional[tokens.Token] = None
        self.cursor: Optional[Cursor] = None
        self.position: Tuple[Optional[bytes], Optional[protocol.Name], bool] = (None, None, False)

    @property
    def complete(self) -> bool:
        return self.own is not None and all(call.done for call in self.calls)


def envelope_and_body(frames: List[bytes]) -> Tuple[list, list]:
    """Split as REP does: every frame up to the first empty one is the return address.

    A DEALER that skipped the empty delimiter is answered in its own framing: its
    identity frame alone, then the reply.
    """
    delimiter = _delimiter_index(frames)
    if delimiter is None:
        return frames[:1], frames[1:]
    return frames[:delimiter + 1], frames[delimiter + 1:]


def _delimiter_index(frames: List[bytes]) -> Optional[int]:
    """Where REP would find the end of the return address: the first empty frame."""
    for index, frame in enumerate(frames):
        if not frame:
            return index
    return None
