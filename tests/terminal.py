"""The client as a person sees it: on a pseudo-terminal, with the same settings whoever runs it."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import Callable, Dict, Optional, Tuple

import pytest

from conftest import clean_env

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and ptys")

TZ = "ZDT-5:30"  # a half-hour offset: dates and %z are really converted
PEOPLE = {"TZ": TZ, "LS_COLORS": "", "TERM": "xterm"}  # the same settings whoever runs the tests


def run_on_tty(*args: str, env: Optional[Dict[str, str]] = None, when: str = "",
               then: Callable[[subprocess.Popen], None] = lambda proc: None,
               timeout: float = 30) -> Tuple[int, str]:
    """Run the client with stdout and stderr on a pseudo-terminal; (status, what it showed).

    Once the terminal has shown ``when``, ``then(client)`` is called (to thaw a server, say).
    """
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "zdir.client", *args],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=clean_env({**PEOPLE, **(env or {})}))
    os.close(slave)
    shown, acted, ends = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < ends:
            if not select.select([master], [], [], ends - time.monotonic())[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if when and not acted and when.encode() in shown:
                acted = True
                then(proc)
        return proc.wait(timeout=10), shown.decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
