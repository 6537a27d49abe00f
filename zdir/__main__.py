"""``python -m zdir``: the version, and the commands this package installs."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from .config import Flags
from .errors import ZdirError, exit_code

COMMANDS = """\
commands (each takes --help):
  python -m zdir.client     zdir            list a directory across servers
  python -m zdir.server_a   zdir-server-a   serve a root, merged with its upstreams' roots
  python -m zdir.server_b   zdir-server-b   serve a root
  python -m zdir.keys       zdir-keys       make a CURVE key pair

example:
  python -m zdir.server_b --root /srv/b &
  python -m zdir.server_a --root /srv/a &
  python -m zdir.client -l"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the overview (or the version with --version); returns the exit status."""
    flags = Flags("zdir", "zdir: a read-only directory listing service that spans machines.",
                  epilog=COMMANDS)
    try:
        flags.parse(argv)
    except ZdirError as exc:
        print(f"zdir: {exc}", file=sys.stderr)
        return exit_code(exc)
    flags.parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
