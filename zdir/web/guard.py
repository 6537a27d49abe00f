"""Who may ask, and what every answer carries: read-only methods, Host check, token, headers.

An ASGI middleware in front of the whole app, so no route can forget it:

- only GET and HEAD: nothing the web view does changes anything;
- the Host header must name this server when it is bound to loopback, so a web
  page elsewhere cannot reach it by pointing a DNS name at 127.0.0.1 (DNS
  rebinding);
- with a token, every request needs it: HTTP basic auth (any user name, the
  token as password: browsers ask for it themselves) or ``Authorization: Bearer``;
- every response carries a Content-Security-Policy that allows the page's own
  script and style only (no inline script, nothing from elsewhere), and headers
  that keep it out of frames and other sites.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Tuple

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS: List[Tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
READ_METHODS = ("GET", "HEAD")
LOOPBACK_NAMES = frozenset(("localhost", "127.0.0.1", "::1"))
REALM = b'Basic realm="zdir", charset="UTF-8"'

Scope = Dict[str, Any]
Send = Callable[[Dict[str, Any]], Awaitable[None]]


class Guard:
    """ASGI middleware: methods, Host, token, then the app; security headers on every answer."""

    def __init__(self, app: Any, *, token: Optional[str] = None,
                 hosts: Optional[Iterable[str]] = None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.hosts = None if hosts is None else frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())

        async def send_guarded(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _with_ours(message.get("headers", ()))}
            await send(message)

        if scope["method"] not in READ_METHODS:
            await _plain(send_guarded, 405, "read-only: GET and HEAD only\n",
                         [(b"allow", b"GET, HEAD")])
        elif self.hosts is not None and host_name(headers.get(b"host", b"")) not in self.hosts:
            await _plain(send_guarded, 421, "this server does not answer for that Host\n")
        elif self.token is not None and not self.authorized(headers.get(b"authorization")):
            await _plain(send_guarded, 401, "a token is needed (basic auth password, or "
                                            "Authorization: Bearer TOKEN)\n",
                         [(b"www-authenticate", REALM)])
        else:
            await self.app(scope, receive, send_guarded)

    def authorized(self, header: Optional[bytes]) -> bool:
        """Basic (any user, the token as password) or Bearer; compared in constant time."""
        if not header or self.token is None:
            return False
        scheme, _, value = header.strip().partition(b" ")
        scheme = scheme.lower()
        if scheme == b"bearer":
            given = value.strip()
        elif scheme == b"basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
        else:
            return False
        return hmac.compare_digest(given, self.token)


_OURS = frozenset(name for name, _ in SECURITY_HEADERS)


def _with_ours(headers: Iterable[Tuple[bytes, bytes]]) -> List[Tuple[bytes, bytes]]:
    """The route's headers, ours over them, and no-store unless the route set its own caching.

    Listings are private: no cache keeps them. Only the static assets say otherwise.
    """
    kept = [(k, v) for k, v in headers if k not in _OURS]
    if not any(k == b"cache-control" for k, _ in kept):
        kept.append((b"cache-control", b"no-store"))
    return kept + SECURITY_HEADERS


def host_name(header: bytes) -> str:
    """The name in a Host header, without its port: ``[::1]:8080`` is ``::1``."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


async def _plain(send: Send, status: int, text: str,
                 extra: Iterable[Tuple[bytes, bytes]] = ()) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
