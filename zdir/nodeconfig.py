"""A node's settings: built from flags by ``server.main``, or directly by tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional, Tuple

from . import config
from .lister import DEFAULT_CHUNK_ENTRIES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES
from .reliable import SocketSetup

if TYPE_CHECKING:  # keys imports zmq.auth, which only CURVE deployments need
    from .keys import CurveServer


class NodeConfig(NamedTuple):
    """Everything a node needs; built from flags by ``server.main``, or directly by tests."""

    name: str
    root: str
    bind: str
    upstreams: Tuple[config.Upstream, ...] = ()  # from --upstream
    upstreams_file: Optional[str] = None  # more of them, read at start and on SIGHUP
    workers: int = config.WORKERS
    upstream_timeout: float = config.UPSTREAM_TIMEOUT
    upstream_retries: int = config.UPSTREAM_RETRIES
    max_pending: int = config.MAX_PENDING
    max_request_bytes: int = config.MAX_REQUEST_BYTES
    max_reply_bytes: int = config.MAX_REPLY_BYTES
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_depth: int = DEFAULT_MAX_DEPTH
    chunk_entries: int = DEFAULT_CHUNK_ENTRIES
    cache_bytes: int = config.CACHE_MB << 20
    stat_ttl: float = config.STAT_TTL
    curve_server: Optional["CurveServer"] = None  # CURVE and ZAP on the listening socket
    upstream_setup: Optional[SocketSetup] = None  # CURVE on the upstream sockets
