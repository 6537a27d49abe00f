"""zdir: a read-only directory listing service that spans machines, built on ZeroMQ."""

from __future__ import annotations

__version__ = "0.1.0"
