"""Plaintext off loopback is allowed but never silent: the warning, on both hops."""

from __future__ import annotations

import logging

import pytest

from zdir import keys
from zdir.nodeconfig import NodeConfig
from zdir.server import _warn_if_exposed

pytestmark = pytest.mark.timeout(30)

CURVE = keys.CurveServer(keys.KeyPair(b"", b""))  # only its presence matters here


def warnings_for(caplog, upstreams=(), **fields) -> list:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="zdir.node"):
        _warn_if_exposed(NodeConfig(name="n", root="/srv/files", **fields), upstreams)
    return [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("bind", [
    "tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.0.0.1:5555", "tcp://[::]:5555",
    "tcp://eth0:5555", "tcp://hosta.example:5555",
])
def test_plaintext_off_loopback_warns_naming_endpoint_and_root(caplog, bind):
    (message,) = warnings_for(caplog, bind=bind)
    assert f"listening on {bind} without CURVE" in message
    assert "/srv/files" in message and "docs/security.md" in message


@pytest.mark.parametrize("bind", [
    "tcp://127.0.0.1:5555", "tcp://127.0.0.1:*", "tcp://127.1.2.3:5555", "tcp://localhost:5555",
    "tcp://[::1]:5555", "ipc:///run/zdir.sock", "inproc://zdir",
])
def test_loopback_and_local_transports_stay_quiet(caplog, bind):
    assert warnings_for(caplog, bind=bind) == []


def test_curve_silences_the_warning(caplog):
    assert warnings_for(caplog, bind="tcp://0.0.0.0:5555", curve_server=CURVE) == []


def test_plaintext_upstream_off_loopback_warns(caplog):
    messages = warnings_for(caplog, bind="tcp://127.0.0.1:5555", curve_server=CURVE,
                            upstreams=("tcp://10.0.0.2:5556", "tcp://127.0.0.1:5557"))
    assert messages == [
        "asking tcp://10.0.0.2:5556 without CURVE: listings cross the network in clear text "
        "(--upstream-server-key; see docs/security.md)"
    ]
    assert warnings_for(caplog, bind="tcp://127.0.0.1:5555", upstream_setup=lambda sock: None,
                        upstreams=("tcp://10.0.0.2:5556",)) == []
