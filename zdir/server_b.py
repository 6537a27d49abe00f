"""Server B: a node that lists its own root (it may still be given upstreams of its own)."""

from __future__ import annotations

from typing import Optional, Sequence

from . import config
from .server import Preset, main as run_node

PRESET = Preset(
    name="server_b",
    bind=config.SERVER_B_BIND,
    upstreams=(),
    description="zdir server B: lists its root and replies.",
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_node(argv, PRESET)


if __name__ == "__main__":
    raise SystemExit(main())
