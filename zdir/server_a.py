"""Server A: a node that lists its root and merges its upstreams' listings (default: B)."""

from __future__ import annotations

from typing import Optional, Sequence

from . import config
from .server import Preset, main as run_node

PRESET = Preset(
    name="server_a",
    bind=config.SERVER_A_BIND,
    upstreams=config.SERVER_A_UPSTREAMS,
    description="zdir server A: lists its root, asks its upstreams, merges, replies.",
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_node(argv, PRESET)


if __name__ == "__main__":
    raise SystemExit(main())
