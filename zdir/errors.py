"""The exception tree of zdir, and the one place where errors become exit codes.

::

    ZdirError
    ├── UsageError              bad flags, environment or arguments       exit 2
    ├── ProtocolError           bytes or a message that break docs/protocol.md
    │   ├── LocalProtocolError  we refused to send it (a PATH over the limit)   exit 2
    │   └── RemoteProtocolError the peer sent it (its bug, or garbage)   exit 4
    ├── Refused                 a server answered with an error code      exit 1
    ├── ListingError            the local filesystem refused a path (carries a protocol code)
    └── Unreachable             a hop gave no usable reply in time        exit 4
        └── AuthFailed          ... and the CURVE handshake failed on the way

Every error carries ``code``: a stable string from ``protocol.ErrorCode``. This
module imports nothing of ours, so every other module may import it.
"""

from __future__ import annotations

from typing import Optional

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_UNREACHABLE = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class ZdirError(Exception):
    """Base of every error zdir raises on purpose."""

    code = "internal"

    def __init__(self, message: str, *, code: Optional[str] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = str(code)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(ZdirError):
    """The command line or the environment asked for something impossible."""

    code = "usage"


class ProtocolError(ZdirError):
    """A message does not follow the wire protocol."""

    code = "bad_request"

    def __init__(
        self, message: str, *, code: Optional[str] = None, request_id: Optional[bytes] = None,
        op: str = "",
    ) -> None:
        super().__init__(message, code=code)
        self.request_id = request_id  # echoed in the error reply when it could be read
        self.op = op  # likewise


class LocalProtocolError(ProtocolError):
    """We built a message the protocol forbids: a bug on our side."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes or a message the protocol forbids."""


class Refused(ZdirError):
    """The server understood the request and answered with an error code."""


class ListingError(ZdirError):
    """The local filesystem refused the path: not found, outside the root, ..."""


class Unreachable(ZdirError):
    """A hop gave no usable reply within its deadline, after every retry."""

    code = "unreachable"

    def __init__(self, message: str, *, endpoint: str, code: Optional[str] = None) -> None:
        super().__init__(message, code=code)
        self.endpoint = endpoint


class AuthFailed(Unreachable):
    """The connection was made but the CURVE handshake did not succeed."""

    code = "auth_failed"


def exit_code(error: BaseException) -> int:
    """Map an error to the command's exit status (the one place this is decided)."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, (UsageError, LocalProtocolError)):
        return EXIT_USAGE  # we refused to send it: the arguments asked too much
    if isinstance(error, (Unreachable, RemoteProtocolError)):
        return EXIT_UNREACHABLE
    return EXIT_REFUSED  # Refused, ListingError: the request itself was turned down
