"""The ``zdir-web`` command: flags, the exposure warning, the ready line, then uvicorn serves."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, List, Mapping, Optional, Sequence, Tuple

from .. import config
from ..errors import EXIT_USAGE, UsageError, ZdirError, exit_code

if TYPE_CHECKING:
    from .app import Settings

log = logging.getLogger("zdir.web")

PROG = "python -m zdir.web"
DEFAULT_BIND = "127.0.0.1:8080"
# Not ZDIR_BIND: that is the servers' ZeroMQ endpoint, and one env file may serve both.
BIND_ENV = "ZDIR_WEB_BIND"
GRACEFUL_SHUTDOWN = 2.0  # seconds open responses get on SIGINT/SIGTERM before they are cut
LOOPBACK_NAMES = frozenset(("localhost", "127.0.0.1", "::1"))


def http_bind(text: str) -> Tuple[str, int]:
    """HOST:PORT to listen on (``[::1]:8080`` for IPv6); port 0 picks a free one."""
    host, colon, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Only this machine can reach it (a name other than localhost counts as beyond)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def web_flags(environ: Optional[Mapping[str, str]] = None) -> config.Flags:
    environ = os.environ if environ is None else environ
    flags = config.Flags(
        PROG,
        "A read-only web view of a zdir server's merged listings, for a browser.",
        epilog=(
            "examples:\n"
            f"  {PROG} --server tcp://hosta:5555                 # http://127.0.0.1:8080/\n"
            f"  ZDIR_TOKEN=$(openssl rand -hex 16) {PROG} --bind 0.0.0.0:8080\n"
            "\nOnce listening it prints one line on stdout:\n"
            "  zdir-web listening on http://HOST:PORT\n"
            "Beyond loopback, set a token (ZDIR_TOKEN): see docs/web.md."
        ),
        environ=environ,
    )
    flags.add("--server", default=config.DEFAULT_SERVER, type=config.endpoint,
              metavar="ENDPOINT", help="zdir server to ask (A, or any node)")
    flags.add("--bind", default=environ.get(BIND_ENV, DEFAULT_BIND), type=http_bind,
              env=False, metavar="HOST:PORT",
              help=f"where to listen; port 0 picks a free one (env {BIND_ENV})")
    flags.add("--timeout", default=config.CLIENT_TIMEOUT, type=config.positive_float,
              metavar="SECONDS", help="how long to wait for the server")
    flags.add("--server-key", metavar="FILE", help="server's public key file: turns CURVE on")
    flags.add("--curve-secret", metavar="FILE", help="this client's secret key file (CURVE)")
    flags.add("--token", metavar="TOKEN",
              help="require this token: as the password of HTTP basic auth (any user "
                   "name), or as Authorization: Bearer TOKEN. Prefer the variable: "
                   "a flag shows in ps")
    flags.add("--allow-host", many=True, metavar="NAME",
              help="also answer requests whose Host is NAME (a reverse proxy's name); "
                   "* answers any. On loopback only localhost names are answered")
    flags.add("--modify-window", default=config.MODIFY_WINDOW, type=config.non_negative_float,
              metavar="SECONDS", help="the compare view's default: mtimes this close are equal")
    flags.add("--log-level", default=config.LOG_LEVEL,
              choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
              help="stderr log level; INFO logs one line per request")
    return flags


def served_hosts(bind_host: str, allowed: Sequence[str]) -> Optional[frozenset]:
    """The Host names answered: loopback names on loopback; None (any) beyond, or with ``*``."""
    if "*" in allowed or (not allowed and not is_loopback(bind_host)):
        return None
    return LOOPBACK_NAMES | {bind_host.lower()} | {name.lower() for name in allowed}


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket (uvicorn listens on it), so that port 0 can tell its real port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UsageError(f"--bind {host}:{port}: {exc.strerror or exc}") from None
    try:
        if os.name == "posix":  # elsewhere SO_REUSEADDR lets two servers share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--bind {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def warnings_for(host: str, token: Optional[str], server_key: Optional[str]) -> List[str]:
    """What a person should know before exposing the web view."""
    if is_loopback(host):
        return []
    lines = [f"listening on {host}, beyond loopback: it is reachable from other machines"]
    if not token:
        lines.append("no token: anyone who can reach it can read every listing the zdir "
                     "servers give; set ZDIR_TOKEN (see docs/web.md)")
    lines.append("plain HTTP: put it behind a TLS reverse proxy for use across networks")
    if not server_key:
        lines.append("the hop to the zdir server is not encrypted either (--server-key)")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the web view until SIGINT or SIGTERM; returns the exit status."""
    try:
        args = web_flags().parse(argv)
    except ZdirError as exc:
        print(f"zdir-web: {exc}", file=sys.stderr)
        return exit_code(exc)
    try:
        import uvicorn

        from .app import Settings, create_app
    except ImportError as exc:
        missing = (exc.name or "a module").split(".")[0]
        print(f"zdir-web: {missing} is missing: install the web extra, pip install 'zdir[web]'",
              file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s zdir-web %(levelname)s %(message)s")
    host, port = args.bind
    settings = Settings(
        server=args.server, timeout=args.timeout, server_key=args.server_key,
        curve_secret=args.curve_secret, token=args.token or None,
        hosts=served_hosts(host, args.allow_host), modify_window=args.modify_window,
    )
    try:
        _check_keys(settings)
        sock = listen(host, port)
    except ZdirError as exc:
        print(f"zdir-web: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exit_code(exc)
    for line in warnings_for(host, settings.token, settings.server_key):
        log.warning("%s", line)
    url = url_of(sock)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Optional[list] = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                print(f"zdir-web listening on {url} server={settings.server}", flush=True)

    server = Server(uvicorn.Config(
        create_app(settings), log_config=None, log_level=args.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN, lifespan="on", server_header=False,
    ))
    # uvicorn raises the signal again once it has stopped: let that end us with status 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_quietly)
    server.run(sockets=[sock])
    return 0


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _check_keys(settings: "Settings") -> None:
    """Bad CURVE key files are a usage error now, not a failure on every page later."""
    from ..client import Client

    Client(settings.server, timeout=settings.timeout, server_key=settings.server_key,
           curve_secret=settings.curve_secret).close()


if __name__ == "__main__":
    raise SystemExit(main())
