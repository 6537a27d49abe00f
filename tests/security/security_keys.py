"""Key pairs for the security tests, made in-process (fast) with zdir.keys itself."""

from __future__ import annotations

import shutil
from pathlib import Path

from zdir import keys


class Keyring:
    """Key pairs by name under one directory, and allow directories built from them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def make(self, *names: str) -> "Keyring":
        for name in names:
            keys.create_key_pair(name, str(self.directory))
        return self

    def public(self, name: str) -> str:
        return str(self.directory / f"{name}{keys.PUBLIC_SUFFIX}")

    def secret(self, name: str) -> str:
        return str(self.directory / f"{name}{keys.SECRET_SUFFIX}")

    def key(self, name: str) -> str:
        """The Z85 public key, as the servers' logs show it."""
        return keys.load_public_key(self.public(name)).decode()

    def allow(self, *names: str) -> str:
        """A directory holding these public keys only: a server's --curve-allow."""
        directory = self.directory.parent / f"allow-{'-'.join(names)}"
        directory.mkdir(exist_ok=True)
        for name in names:
            shutil.copy(self.public(name), directory)
        return str(directory)


def standard_keyring(tmp_path: Path) -> Keyring:
    """The cast of every security test: both servers, a client, and a stranger."""
    return Keyring(tmp_path / "keys").make("server_a", "server_b", "client", "stranger")
