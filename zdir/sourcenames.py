"""One name per source in a relay's replies: a name taken already is shown as name@host:port.

Clients tell sources apart by name alone (a chunk carries only its source's name), so
two hosts both started with the default ``--name`` would reach a client as one source,
their entries merged out of order. A relay therefore gives every source it relays a
name no other source of its has: the first to use a name keeps it, for as long as the
relay runs; another source with that name is shown as ``name@host:port`` (the endpoint
it is reached at), or ``name@host:port~2`` and so on if even that is taken.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from .protocol import MAX_SOURCE_NAME

#: Who a source is, seen from the relay: the link it came over, its name there, and
#: where its own relay reached it (endpoint, via): unique within that link's answer.
Identity = Tuple[str, str, Optional[str], Optional[str]]


class SourceNames:
    """The names a relay has given the sources it relays, and who holds each name."""

    def __init__(self, own: str) -> None:
        own_identity: Identity = ("", own, None, None)
        self._holder: Dict[str, Identity] = {own: own_identity}
        self._shown: Dict[Identity, str] = {own_identity: own}

    def shown(self, identity: Identity, endpoint: Optional[str]) -> str:
        """The name to show for this source: its own, unless another source has it."""
        shown = self._shown.get(identity)
        if shown is not None:
            return shown
        shown = name = identity[1]
        if self._holder.get(name, identity) != identity:
            base = f"{name}@{_host_port(endpoint)}"[:MAX_SOURCE_NAME]
            shown, count = base, 1
            while self._holder.get(shown, identity) != identity:
                count += 1
                suffix = f"~{count}"
                shown = base[:MAX_SOURCE_NAME - len(suffix)] + suffix
        self._holder[shown] = identity
        self._shown[identity] = shown
        return shown


def _host_port(endpoint: Optional[str]) -> str:
    """``tcp://10.0.0.2:5556`` as ``10.0.0.2:5556``: the part that tells hosts apart."""
    if not endpoint:
        return "unknown"
    return "".join(endpoint.split("://", 1)[-1].split())  # no white space in a name
