"""An encrypted chain: key pairs for B, A and a client, then B and A with CURVE, then the client.

    python examples/curve_chain.py            # the merged listing, encrypted on both hops
    python examples/curve_chain.py -l docs    # any client flags and PATH

Who holds which key (made with ``python -m zdir.keys NAME --dir DIR``):

    B       its secret key; lets in only the public keys in allow_b/ (A's)
    A       its secret key; lets in only the public keys in allow_a/ (the client's);
            B's public key to reach B, where A's own key pair is A's identity
    client  A's public key (--server-key) and its own secret key (--curve-secret)

Then a stranger (a key pair that is in no allow directory) is turned away.
Keys live in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Sequence

from quickstart import HERE, start_server, stop_server


def make_keys(directory: Path, *names: str) -> None:
    for name in names:
        subprocess.run([sys.executable, "-m", "zdir.keys", name, "--dir", str(directory)],
                       check=True, stdout=subprocess.DEVNULL)


def allow(directory: Path, public_key: Path) -> str:
    """A directory of the public keys a server lets in (here, one)."""
    directory.mkdir()
    shutil.copy(public_key, directory)
    return str(directory)


def main(argv: Sequence[str] = ()) -> int:
    started: List[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="zdir-curve-") as workdir:
        work = Path(workdir)
        keys = work / "keys"
        make_keys(keys, "server_b", "server_a", "client", "stranger")
        try:
            b, b_endpoint = start_server(
                "server_b", "--root", str(HERE / "b"),
                "--curve-secret", str(keys / "server_b.key_secret"),
                "--curve-allow", allow(work / "allow_b", keys / "server_a.key"),
            )
            started.append(b)
            a, a_endpoint = start_server(
                "server_a", "--root", str(HERE / "a"), "--upstream", b_endpoint,
                "--curve-secret", str(keys / "server_a.key_secret"),
                "--curve-allow", allow(work / "allow_a", keys / "client.key"),
                "--upstream-server-key", str(keys / "server_b.key"),
            )
            started.append(a)
            client = [sys.executable, "-m", "zdir.client", "--server", a_endpoint,
                      "--server-key", str(keys / "server_a.key")]
            status = subprocess.call([*client, "--curve-secret",
                                      str(keys / "client.key_secret"), *argv])
            stranger = subprocess.run(
                [*client, "--curve-secret", str(keys / "stranger.key_secret"),
                 "--timeout", "1", "--retries", "0"],
                capture_output=True, text=True,
            )
            print(f"a stranger's key is turned away (exit {stranger.returncode}): "
                  f"{stranger.stderr.strip()}", file=sys.stderr)
            return status
        finally:
            for proc in reversed(started):
                stop_server(proc)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
