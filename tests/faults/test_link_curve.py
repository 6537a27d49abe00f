"""The request helper (zdir/reliable.py) and CURVE: each mistake named at once, and not retried.

The fake peers and the loop are in tests/linkpeers.py.
"""

from __future__ import annotations

from typing import Callable

import pytest
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from linkpeers import AT_ONCE, expect
from zdir.protocol import ErrorCode
from zdir.reliable import RECONNECT_IVL_MAX_MS

pytestmark = pytest.mark.timeout(30)

#: A peer that no longer connects must be left alone: a window with several retries in it.
NO_RETRY_WINDOW = 3 * RECONNECT_IVL_MAX_MS / 1000


# -- CURVE: which mistake, at once, and not tried again -----------------------------------------

def curve_client(server_public: bytes) -> Callable[[zmq.Socket], None]:
    public, secret = zmq.curve_keypair()

    def setup(sock: zmq.Socket) -> None:
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = \
            server_public, public, secret

    return setup


CURVE_MISTAKES = {
    # name: (server uses CURVE, an allow list, what the client is told)
    "key-not-allowed": (True, True, "--curve-allow"),
    "wrong-server-key": (True, False, "does not match --server-key"),
    "server-without-curve": (False, False, "does not use CURVE, but --server-key was given"),
    "client-without-key": (True, False, "requires CURVE"),
}


@pytest.mark.parametrize("mistake", list(CURVE_MISTAKES))
def test_a_curve_mistake_is_named_at_once_and_not_retried(loop, routers, zmq_context,
                                                           tmp_path, mistake):
    server_curve, allow_list, told = CURVE_MISTAKES[mistake]
    server_public, server_secret = zmq.curve_keypair()
    gatekeeper = None
    secure = None
    if server_curve:
        gatekeeper = ThreadAuthenticator(zmq_context)
        gatekeeper.start()
        if allow_list:  # a directory that holds some other client's key
            zmq.auth.create_certificates(str(tmp_path), "someone-else")
        gatekeeper.configure_curve(
            domain="*", location=str(tmp_path) if allow_list else zmq.auth.CURVE_ALLOW_ANY)

        def secure(sock: zmq.Socket) -> None:
            sock.curve_secretkey, sock.curve_publickey = server_secret, server_public
            sock.curve_server = True
    try:
        router = routers(secure=secure)
        setup = {"wrong-server-key": curve_client(zmq.curve_keypair()[0]),
                 "client-without-key": None}.get(mistake, curve_client(server_public))
        link = loop.link(router.endpoint, setup=setup)
        call, took = loop.call(link, deadline=30)
        message = expect(call, ErrorCode.AUTH_FAILED, told)
        assert took < AT_ONCE
        others = [t for name, (_, _, t) in CURVE_MISTAKES.items() if name != mistake]
        assert not any(other in message for other in others), "not its own message"
        loop.run_for(NO_RETRY_WINDOW)
        assert router.connections() == 1, "a refused handshake was tried again"
        again, took = loop.call(link, deadline=30)  # within HANDSHAKE_RETRY_AFTER
        assert expect(again, ErrorCode.AUTH_FAILED, told) and took < 0.1
        assert router.connections() == 0
        assert router.unread() == 0
    finally:
        if gatekeeper is not None:
            gatekeeper.stop()
