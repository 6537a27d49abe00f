"""A two-level relay tree on one machine: leaves, K relays, one top node, then the client.

    python examples/fleet/tree.py                                  # 100 nodes, 4 relays
    python examples/fleet/tree.py --nodes 1000 --relays 10 -- --ping
    python examples/fleet/tree.py --nodes 1000 --refuse 100 --freeze 10 -- -U | wc -l
    python examples/fleet/tree.py --real 8 --relays 2 -- -l        # real server_b leaves

Everything after ``--`` goes to the client (any flags and a PATH). The leaves are
the fleet simulator (tests/fleetsim.py: N protocol-level nodes in one process,
some of which may refuse, freeze, answer late or answer garbage) or, with
``--real N``, N real ``server_b`` processes serving examples/b. Each relay is
an ordinary ``server_a`` whose ``--upstreams-file`` holds its share of the
leaves, in order; the top node's file holds the relays. Every node binds a free
loopback port; the upstreams files are written to a temporary directory as the
endpoints become known. The client's exit status is this script's; every
process it started is stopped at the end. docs/fleet.md explains the tree.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent
FLEETSIM = EXAMPLES.parent / "tests" / "fleetsim.py"
sys.path.insert(0, str(EXAMPLES))  # quickstart's start_server and stop_server

from quickstart import start_server, stop_server  # noqa: E402

from zdir.config import Upstream, read_upstreams  # noqa: E402
from zdir.nodeset import fold  # noqa: E402

START_TIMEOUT = 120.0  # a thousand simulated nodes bind in well under a second; slack for CI


def parse_args(argv: Sequence[str]) -> Tuple[argparse.Namespace, List[str]]:
    """The tree's own flags, and the client's (everything after ``--``)."""
    ours, client = list(argv), []
    if "--" in ours:
        cut = ours.index("--")
        ours, client = ours[:cut], ours[cut + 1:]
    parser = argparse.ArgumentParser(prog="python examples/fleet/tree.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100, help="simulated leaves (default 100)")
    parser.add_argument("--relays", type=int, default=4, help="relays under the top (default 4)")
    parser.add_argument("--entries", type=int, default=100,
                        help="files in each simulated leaf (default 100)")
    for mode in ("refuse", "freeze", "late", "garbage"):
        parser.add_argument(f"--{mode}", type=int, default=0, metavar="N",
                            help=f"simulated leaves that {mode} (default 0)")
    parser.add_argument("--real", type=int, metavar="N",
                        help="N real server_b leaves serving examples/b instead of the simulator")
    args = parser.parse_args(ours)
    if args.relays < 1:
        parser.error("--relays must be 1 or more")
    return args, client


def shares(leaves: Sequence[Upstream], relays: int) -> List[List[Upstream]]:
    """The leaves in ``relays`` contiguous shares of nearly equal size, in order."""
    count = len(leaves)
    return [list(leaves[count * r // relays: count * (r + 1) // relays]) for r in range(relays)]


def write_upstreams(path: Path, upstreams: Sequence[Upstream]) -> Path:
    """An --upstreams-file: ``ENDPOINT NAME`` per line (docs/fleet.md)."""
    path.write_text("".join(f"{u.endpoint} {u.name or ''}".rstrip() + "\n" for u in upstreams))
    return path


def start_simulator(args: argparse.Namespace, out: Path) -> subprocess.Popen:
    """tests/fleetsim.py in its own process; returns once its ready line says it is bound."""
    command = [sys.executable, str(FLEETSIM), "--nodes", str(args.nodes), "--entries",
               str(args.entries), "--upstreams-file", str(out)]
    for mode in ("refuse", "freeze", "late", "garbage"):
        command += [f"--{mode}", str(getattr(args, mode))]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if not line.startswith("fleetsim ready"):
        stop_server(proc)
        raise SystemExit("the fleet simulator did not start (see its messages above)")
    return proc


def start_real_leaves(count: int, started: List[subprocess.Popen]) -> List[Upstream]:
    """``count`` server_b processes named node0001..., each serving examples/b."""
    leaves = []
    for index in range(1, count + 1):
        name = f"node{index:04d}"
        proc, endpoint = start_server("server_b", "--name", name, "--root", str(EXAMPLES / "b"))
        started.append(proc)
        leaves.append(Upstream(endpoint, name))
    return leaves


def start_relay(name: str, root: Path, upstreams_file: Path,
                started: List[subprocess.Popen]) -> Upstream:
    """A server_a with an empty root in front of the upstreams in ``upstreams_file``."""
    proc, endpoint = start_server("server_a", "--name", name, "--root", str(root),
                                  "--upstreams-file", str(upstreams_file))
    started.append(proc)
    return Upstream(endpoint, name)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, client_args = parse_args(sys.argv[1:] if argv is None else argv)
    started: List[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="zdir-fleet-") as scratch:
        work = Path(scratch)
        empty = work / "empty-root"  # relays and the top list nothing of their own
        empty.mkdir()
        try:
            if args.real:
                leaves = start_real_leaves(args.real, started)
            else:
                started.append(start_simulator(args, work / "leaves.txt"))
                leaves = read_upstreams(str(work / "leaves.txt"))
            relays = []
            for index, share in enumerate(shares(leaves, args.relays), 1):
                name = f"relay{index:02d}"
                share_file = write_upstreams(work / f"{name}.txt", share)
                relays.append(start_relay(name, empty, share_file, started))
            top = start_relay("top", empty, write_upstreams(work / "top.txt", relays), started)
            print(f"tree: top ({top.endpoint}) -> {fold(r.name or '' for r in relays)} -> "
                  f"{fold(u.name or u.endpoint for u in leaves)}", file=sys.stderr)
            began = time.monotonic()
            status = subprocess.call([sys.executable, "-m", "zdir.client", "--server",
                                      top.endpoint, *client_args])
            print(f"tree: client exit {status} in {time.monotonic() - began:.2f}s",
                  file=sys.stderr)
            return status
        finally:
            for proc in reversed(started):
                stop_server(proc)


if __name__ == "__main__":
    raise SystemExit(main())
