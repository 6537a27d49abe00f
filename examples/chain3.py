"""Three nodes on one machine, A -> B -> C, and a client asking A: three roots in one listing.

    python examples/chain3.py                  # examples/a, b and c, merged
    python examples/chain3.py --compare -R     # any client flags and PATH

C is a server_b named server_c; B is a server_b whose upstream is C; A's upstream
is B. The last node starts first, so that each node learns its upstream's
endpoint from that upstream's ready line (any start order works; this one
makes the first listing complete). Every server is stopped at the end.
"""

from __future__ import annotations

import subprocess
import sys
from typing import List, Sequence

from quickstart import HERE, start_server, stop_server

# (module, source name, root), from the node the client asks to the end of the chain
CHAIN = [
    ("server_a", "server_a", HERE / "a"),
    ("server_b", "server_b", HERE / "b"),
    ("server_b", "server_c", HERE / "c"),
]


def main(argv: Sequence[str] = ()) -> int:
    started: List[subprocess.Popen] = []
    try:
        upstream: List[str] = []
        hops = []
        for module, name, root in reversed(CHAIN):
            proc, endpoint = start_server(module, "--name", name, "--root", str(root), *upstream)
            started.append(proc)
            upstream = ["--upstream", endpoint]
            hops.insert(0, f"{name} ({endpoint})")
        print("chain: " + " -> ".join(hops), file=sys.stderr)
        entry = upstream[1]  # the first node of the chain, started last
        return subprocess.call([sys.executable, "-m", "zdir.client", "--server", entry, *argv])
    finally:
        for proc in reversed(started):
            stop_server(proc)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
