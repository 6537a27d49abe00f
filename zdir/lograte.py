"""Log lines a peer can cause over and over: at most one per key per interval, the rest counted.

A misconfigured client retrying every 100 ms, or a hostile one, must not fill the
disk with one line per attempt, nor hide everything else in the log. Each line
has a key saying what repeats (``("refused key", public_key)``,
``("bad request", address)``, or just the kind when the peer can change its
identity for free). The first line for a key is logged; the same key is then
quiet for ``interval`` seconds, and its next line says how many were held back:
``... (and 41 more like it in the last 10s)``. Memory is bounded: beyond
``max_keys`` keys, the least recently logged is forgotten (its count with it).
Thread-safe; imports nothing of ours.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable, List

DEFAULT_INTERVAL = 10.0  # seconds between two lines with the same key
DEFAULT_MAX_KEYS = 4096  # keys remembered at once (about 100 bytes each)


class RateLimitedLog:
    """A logger's ``log``, with each key logged at most once per interval."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL,
                 max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [when it was last logged, lines held back since]; oldest first
        self._seen: "OrderedDict[Hashable, List[Any]]" = OrderedDict()

    def log(self, level: int, key: Hashable, message: str, *args: Any,
            exc_info: Any = None) -> bool:
        """``logger.log(level, message, *args)`` unless ``key`` was logged within the interval.

        Returns True when the line was logged, False when it was held back (and counted).
        """
        if not self.logger.isEnabledFor(level):
            return False
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
                return False
            held = seen[1] if seen is not None else 0
            since = now - seen[0] if seen is not None else 0.0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
        if held:
            message += " (and %d more like it in the last %.0fs)"
            args = (*args, held, since)
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, key: Hashable, message: str, *args: Any) -> bool:
        return self.log(logging.WARNING, key, message, *args)

    def info(self, key: Hashable, message: str, *args: Any) -> bool:
        return self.log(logging.INFO, key, message, *args)

    def error(self, key: Hashable, message: str, *args: Any, exc_info: Any = None) -> bool:
        return self.log(logging.ERROR, key, message, *args, exc_info=exc_info)
