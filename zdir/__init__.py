"""zdir: a read-only directory listing service that spans machines, built on ZeroMQ.

The public API: ``Client``, ``Listing``, ``Entries``, ``Entry``, ``Reply`` and the
errors (``ZdirError`` and its subclasses); see docs/api.md. They are imported on
first use, so ``python -m zdir.server_b`` and ``zdir --version`` pay only for what
they run.
"""

from __future__ import annotations

import logging
from typing import Any

__version__ = "0.1.0"

# A library logs; the commands decide where it goes (the servers to stderr, the client
# nowhere: it says what went wrong in its own words).
logging.getLogger(__name__).addHandler(logging.NullHandler())

_EXPORTS = {
    "Client": "client",
    "Entry": "entries",
    "Entries": "entries",
    "Listing": "client",
    "Reply": "client",
    "SourceStatus": "protocol",
    "ErrorCode": "protocol",
    "ZdirError": "errors",
    "UsageError": "errors",
    "ProtocolError": "errors",
    "Refused": "errors",
    "Unreachable": "errors",
    "AuthFailed": "errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zdir' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    return getattr(module, name)
