"""Run the whole chain on the sample directories: B, then A, then the client; stop both.

    python examples/quickstart.py            # the merged listing
    python examples/quickstart.py -l docs    # any client flags and PATH

Servers bind free loopback ports (tcp://127.0.0.1:*); their ready lines tell us which.
Other examples import ``start_server`` and ``stop_server`` from here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
READY_SUFFIX = " listening on "


def start_server(module: str, *args: str) -> Tuple[subprocess.Popen, str]:
    """Start ``python -m zdir.MODULE`` and return it with the endpoint from its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"zdir.{module}", "--bind", "tcp://127.0.0.1:*",
         "--log-level", "WARNING", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()  # the ready line; EOF ("") if the server failed to start
    if READY_SUFFIX not in line:
        stop_server(proc)
        raise SystemExit(f"{module} did not start (see its messages above)")
    endpoint = line.split(READY_SUFFIX, 1)[1].split()[0]
    return proc, endpoint


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (TerminateProcess on Windows), then wait; kill if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: Sequence[str] = ()) -> int:
    started: List[subprocess.Popen] = []
    try:
        b, b_endpoint = start_server("server_b", "--root", str(HERE / "b"))
        started.append(b)
        a, a_endpoint = start_server(
            "server_a", "--root", str(HERE / "a"), "--upstream", b_endpoint
        )
        started.append(a)
        client = [sys.executable, "-m", "zdir.client", "--server", a_endpoint, *argv]
        return subprocess.call(client)
    finally:
        for proc in reversed(started):
            stop_server(proc)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
