"""CURVE key files, and the one place where sockets are given CURVE and ZAP.

Key files are pyzmq's certificate files (``zmq.auth.create_certificates``):
``NAME.key`` holds the public key and may be handed out; ``NAME.key_secret``
holds both keys and must stay readable by its owner only (mode 0600), as an SSH
private key. The command ``python -m zdir.keys NAME [--dir DIR]`` makes a pair.

A node's listening socket becomes a CURVE server with a ZAP handler
(``CurveServer.secure``): with ``--curve-allow DIR`` only clients whose public key
file is in DIR get in, otherwise any client that knows the server's public key.
Every verdict is logged with the client's address and public key, and handshakes
that fail before ZAP is asked (no CURVE, wrong server key) are logged too.
Outgoing sockets (the client's, and a node's towards its upstreams) get a
``SocketSetup`` from ``client_security``.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from . import config
from .errors import EXIT_OK, UsageError, ZdirError, exit_code
from .reliable import SocketSetup

log = logging.getLogger(__name__)

PUBLIC_SUFFIX = ".key"  # what zmq.auth.create_certificates writes, and what --curve-allow reads
SECRET_SUFFIX = ".key_secret"
PUBLIC_MODE = 0o644
SECRET_MODE = 0o600
KEY_DIR_MODE = 0o700  # a key directory that --dir creates
FAILURE_LOG_INTERVAL = 10.0  # seconds between log lines about failed handshakes
WATCHER_STOP_TIMEOUT = 1.0  # seconds to wait for the handshake watcher on stop
_Z85_KEY_LENGTH = 40

# Handshakes that fail before ZAP is asked, and what they usually mean.
_HANDSHAKE_REASONS = {
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: "the client does not use CURVE",
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: "the client has the wrong server public key",
}
_PRE_ZAP_FAILURES = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


class KeyPair(NamedTuple):
    """A CURVE key pair, both halves Z85-encoded (40 bytes each)."""

    public: bytes
    secret: bytes


# -- key files --------------------------------------------------------------------------------

def create_key_pair(name: str, directory: str = ".", *, force: bool = False) -> Tuple[str, str]:
    """Write NAME.key (mode 0644) and NAME.key_secret (0600) in DIR; return their paths.

    The pair is made in a private directory and copied in with ``O_EXCL``, so the
    secret is never readable by others, not even for a moment, and an existing
    file is never overwritten unless ``force``.
    """
    if not name or name in (".", "..") or any(sep in name for sep in "/\\\x00"):
        raise UsageError(f"key name {name!r}: give a plain file name, like 'server_b'")
    try:
        os.makedirs(directory, mode=KEY_DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {directory}: {exc.strerror}") from exc
    base = os.path.join(directory, name)
    targets = [(base + PUBLIC_SUFFIX, PUBLIC_MODE), (base + SECRET_SUFFIX, SECRET_MODE)]
    existing = [path for path, _ in targets if os.path.lexists(path)]
    if existing and not force:
        raise UsageError(f"{' and '.join(existing)}: already there; pass --force to replace")
    try:
        private = tempfile.mkdtemp(prefix=".zdir-keys-", dir=directory)  # mode 0700
    except OSError as exc:
        raise UsageError(f"cannot write in {directory}: {exc.strerror}") from exc
    try:
        made = zmq.auth.create_certificates(private, name)
        for source, (target, mode) in zip(made, targets):
            _install(source, target, mode, replace=force)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return targets[0][0], targets[1][0]


def _install(source: str, target: str, mode: int, *, replace: bool) -> None:
    """Copy a freshly made key file to ``target``, created with ``mode`` from the start."""
    with open(source, "rb") as handle:
        data = handle.read()
    if replace and os.path.lexists(target):
        os.unlink(target)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise UsageError(f"{target} already exists; pass --force to replace it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as out:
        if hasattr(os, "fchmod"):
            os.fchmod(out.fileno(), mode)  # exactly this mode, whatever the umask
        out.write(data)


def check_private(path: str) -> None:
    """Refuse a secret key file that others may read, as ssh does for a private key."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise UsageError(
            f"{path}: secret key file is readable by others (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )


def _load(path: str, what: str) -> Tuple[bytes, Optional[bytes]]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what} {path}: not a readable CURVE key file ({exc})") from None
    for key in (public, secret):
        if key is not None and not _is_z85_key(key):
            raise UsageError(f"{what} {path}: a key is not 40 characters of Z85")
    return public, secret


def _is_z85_key(key: bytes) -> bool:
    return len(key) == _Z85_KEY_LENGTH and all(c in z85.Z85CHARS for c in key)


def load_public_key(path: str, what: str = "public key") -> bytes:
    """The Z85 public key in a key file (either file of a pair will do)."""
    return _load(path, what)[0]


def load_key_pair(path: str, what: str = "--curve-secret") -> KeyPair:
    """Both keys from a NAME.key_secret file, after checking its mode and their match."""
    public, secret = _load(path, what)
    if secret is None:
        raise UsageError(f"{what} {path}: holds no secret key (give the {SECRET_SUFFIX} file)")
    check_private(path)
    if zmq.curve_public(secret) != public:
        raise UsageError(f"{what} {path}: its public and secret keys do not belong together")
    return KeyPair(public, secret)


def allowed_keys(directory: str) -> Dict[bytes, bool]:
    """The public keys that the ZAP handler will load from DIR; none at all is an error."""
    if not os.path.isdir(directory):
        raise UsageError(f"--curve-allow {directory}: not a directory")
    try:
        keys = zmq.auth.load_certificates(directory)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--curve-allow {directory}: {exc}") from None
    if not keys:
        raise UsageError(
            f"--curve-allow {directory}: no public key files (*{PUBLIC_SUFFIX}) in it, "
            "so no client could connect"
        )
    return keys


# -- sockets ----------------------------------------------------------------------------------

def client_security(curve_secret: Optional[str], server_key: Optional[str]) -> SocketSetup:
    """CURVE for an outgoing socket: the server's public key, and our pair or a fresh one.

    Without ``curve_secret`` an ephemeral key pair is made in memory: enough for
    encryption, and for a server that lets in any client that knows its key.
    """
    if not server_key:
        raise UsageError("--curve-secret needs --server-key (the server's public key file)")
    server_public = load_public_key(server_key, "server key")
    pair = load_key_pair(curve_secret) if curve_secret else KeyPair(*zmq.curve_keypair())

    def setup(sock: zmq.Socket) -> None:
        sock.curve_serverkey = server_public
        sock.curve_publickey = pair.public
        sock.curve_secretkey = pair.secret

    return setup


class CurveServer:
    """A listening socket's CURVE key pair and who may connect (None: any client)."""

    def __init__(self, pair: KeyPair, allow_dir: Optional[str] = None) -> None:
        self.pair = pair
        self.allow_dir = allow_dir

    def secure(self, sock: zmq.Socket) -> "Gatekeeper":
        """Make ``sock`` a CURVE server and start its ZAP handler; call before ``bind``.

        libzmq lets a CURVE client in without asking when no ZAP handler is bound,
        so the handler must be running before the first handshake can happen.
        """
        gatekeeper = Gatekeeper(sock.context, self.allow_dir)
        gatekeeper.start()
        sock.curve_secretkey = self.pair.secret
        sock.curve_publickey = self.pair.public
        sock.curve_server = True
        gatekeeper.watch(sock)
        return gatekeeper


class Gatekeeper(ThreadAuthenticator):
    """pyzmq's ZAP thread, logging every verdict with the client's address and key.

    It also watches the socket's handshakes, because a client without CURVE or
    with the wrong server key fails before ZAP is asked and would go unlogged.
    """

    def __init__(self, context: zmq.Context, allow_dir: Optional[str]) -> None:
        super().__init__(context)
        self.allow_dir = allow_dir
        self._verdict = (b"", b"")
        self._watcher: Optional[threading.Thread] = None

    def start(self) -> None:
        super().start()
        self.configure_curve(domain="*", location=self.allow_dir or zmq.auth.CURVE_ALLOW_ANY)

    async def handle_zap_message(self, msg: List[bytes]) -> None:
        self._verdict = (b"", b"")
        await super().handle_zap_message(msg)
        address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
        key = z85.encode(msg[6]).decode() if len(msg) == 7 and len(msg[6]) == 32 else "?"
        status, reason = self._verdict
        if status == b"200":
            log.info("accepted CURVE client %s key %s", address, key)
        else:
            log.warning("refused CURVE client %s key %s: %s (allowed keys: --curve-allow %s)",
                        address, key, reason.decode("utf-8", "replace"), self.allow_dir)

    def _send_zap_reply(self, request_id: bytes, status_code: bytes, status_text: bytes,
                        user_id: str = "anonymous") -> None:
        self._verdict = (status_code, status_text)
        super()._send_zap_reply(request_id, status_code, status_text, user_id)

    def watch(self, sock: zmq.Socket) -> None:
        """Log failed handshakes on ``sock`` from a thread of their own (at most one line per
        FAILURE_LOG_INTERVAL: a misconfigured client retries every 100 ms)."""
        monitor = sock.get_monitor_socket(_PRE_ZAP_FAILURES | zmq.EVENT_MONITOR_STOPPED)
        self._watcher = threading.Thread(target=_log_failed_handshakes, args=(monitor,),
                                         name="curve-handshakes", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop the ZAP thread; call after closing the watched socket, which ends the watcher."""
        super().stop()
        if self._watcher is not None:
            self._watcher.join(WATCHER_STOP_TIMEOUT)
            self._watcher = None


def _log_failed_handshakes(monitor: zmq.Socket) -> None:
    quiet_until: Dict[str, float] = {}  # per kind of failure
    missed: Dict[str, int] = {}
    try:
        while True:
            event = recv_monitor_message(monitor)
            if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                return
            reason, now = _handshake_failure(event["event"], event["value"]), time.monotonic()
            if now < quiet_until.get(reason, 0.0):
                missed[reason] = missed.get(reason, 0) + 1
                continue
            more = missed.pop(reason, 0)
            log.warning("refused a client on %s: CURVE handshake failed: %s%s",
                        event["endpoint"].decode("utf-8", "replace"), reason,
                        f" ({more} more like it since the last report)" if more else "")
            quiet_until[reason] = now + FAILURE_LOG_INTERVAL
    except zmq.ContextTerminated:
        pass
    finally:
        monitor.close(linger=0)


def _handshake_failure(event: int, value: int) -> str:
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:  # the value is an errno
        return f"the connection broke during the handshake ({os.strerror(value)})"
    return _HANDSHAKE_REASONS.get(value, f"protocol error 0x{value:x}")


def node_security(
    curve_secret: Optional[str], curve_allow: Optional[str], upstream_server_key: Optional[str]
) -> Tuple[Optional[CurveServer], Optional[SocketSetup]]:
    """From a node's three CURVE flags: its listening socket's CURVE, and its upstreams'."""
    if curve_allow and not curve_secret:
        raise UsageError("--curve-allow needs --curve-secret (CURVE on the listening socket)")
    server = None
    if curve_secret:
        if curve_allow:
            allowed_keys(curve_allow)  # fail now, not at the first client
        server = CurveServer(load_key_pair(curve_secret), curve_allow)
    upstream = client_security(curve_secret, upstream_server_key) if upstream_server_key else None
    return server, upstream


# -- the command ------------------------------------------------------------------------------

def keys_flags() -> config.Flags:
    prog = "python -m zdir.keys"
    flags = config.Flags(
        prog,
        "Create a CURVE key pair: NAME.key (public, give it to peers) and "
        "NAME.key_secret (secret, mode 0600, keep it on this host).",
        epilog=(
            "example:\n"
            f"  {prog} server_b --dir /etc/zdir/keys\n"
            "  # server_b.key goes to every host that talks to B (--server-key,\n"
            "  # --upstream-server-key); B starts with --curve-secret server_b.key_secret"
        ),
    )
    flags.parser.add_argument("name", metavar="NAME", help="base name of the two key files")
    flags.add("--dir", default=".", metavar="DIR", env=False,
              help="where to write them (created with mode 0700 if missing)")
    flags.switch("--force", help="replace existing key files of that name")
    return flags


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``zdir-keys`` command; returns its exit status."""
    try:
        args = keys_flags().parse(argv)
        public, secret = create_key_pair(args.name, args.dir, force=args.force)
    except ZdirError as exc:
        print(f"zdir-keys: {exc}", file=sys.stderr)
        return exit_code(exc)
    print(f"public key: {public}")
    print(f"secret key: {secret} (mode 0600: keep it on this host only)")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
