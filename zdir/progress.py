"""A status line on a terminal's stderr while a listing is slow, blanked before it prints."""

from __future__ import annotations

import os
import threading
import time
from typing import IO, Any, Optional, Sequence

DELAY = 1.0  # seconds before the line appears: a quick listing never shows one
INTERVAL = 0.1  # seconds between redraws
PER_SOURCE = 4  # up to this many sources, the line counts each one's entries


class Progress:
    """``waiting for ENDPOINT... 1.2s``, then the sources that answered and their entries.

    A timer thread draws the line, because the main thread is blocked in a reply or
    busy sorting; a paged listing updates ``sources`` as each page arrives. With
    ``stream=None`` it does nothing at all, so callers need no ``if``; ``stop`` must
    come before anything is written to stdout.
    """

    def __init__(self, stream: Optional[IO[str]], endpoint: str) -> None:
        self.stream = stream
        self.endpoint = endpoint
        self.sources: Sequence[Any] = ()  # set once the reply's header is read
        self._started = time.monotonic()
        self._width = 0  # of the line on screen, to blank it out
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None
        if stream is not None:
            self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
            self._thread.start()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop drawing and blank the line; safe to call more than once."""
        if self._thread is None:
            return
        self._done.set()
        self._thread.join()
        self._thread = None
        if self._width:
            self._write("\r" + " " * self._width + "\r")

    def _run(self) -> None:
        if self._done.wait(DELAY):
            return
        while self._write("\r" + self._line().ljust(self._width)):
            if self._done.wait(INTERVAL):
                return

    def _line(self) -> str:
        elapsed = time.monotonic() - self._started
        sources = list(self.sources)  # a paged listing updates it as its pages arrive
        if 0 < len(sources) <= PER_SOURCE:  # entries received so far, source by source
            counts = ", ".join(f"{s.name} {s.entries}" for s in sources)
            text = f"zdir: {counts} entries... {elapsed:.1f}s"
        elif sources:
            answered = sum(1 for s in sources if not s.failed)
            entries = sum(s.entries for s in sources)
            text = (f"zdir: {answered} of {len(sources)} sources answered, "
                    f"{entries} entries... {elapsed:.1f}s")
        else:
            text = f"zdir: waiting for {self.endpoint}... {elapsed:.1f}s"
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns  # type: ignore[union-attr]
        except (OSError, ValueError):
            columns = 0
        columns = columns or 80  # a terminal that never said its size reports 0
        text = text[: columns - 1]  # a line that wraps cannot be blanked with \r
        self._width = max(self._width, len(text))
        return text

    def _write(self, text: str) -> bool:
        try:
            self.stream.write(text)  # type: ignore[union-attr]
            self.stream.flush()  # type: ignore[union-attr]
        except (OSError, ValueError):  # the terminal went away: the listing goes on
            return False
        return True
