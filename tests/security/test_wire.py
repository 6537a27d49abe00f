"""Proof on the wire: with CURVE a file's name never crosses loopback in clear; without, it does.

tcpdump captures both hops (client to A, A to B) while a client lists directories
that hold a file with a unique marker name. The capture is read from tcpdump's
stdout (``-w - -U``: one flush per packet), so no file permissions get in the way.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import uuid

import pytest

from conftest import make_tree, run_client, unused_tcp_endpoint, wait_until
from security_keys import standard_keyring

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def keyring(tmp_path):
    return standard_keyring(tmp_path)

TCPDUMP_READY_TIMEOUT = 10.0
CAPTURE_WAIT = 10.0


def cannot_run(why: str) -> None:
    """A skipped proof proves nothing: in CI, where .ci/run installs tcpdump, it fails."""
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


class Capture:
    """``tcpdump -i lo`` on some ports, started and stopped by pid."""

    def __init__(self, ports) -> None:
        tcpdump = shutil.which("tcpdump")
        if tcpdump is None:
            cannot_run("tcpdump is not installed (.ci/run installs it when run as root)")
        expression = " or ".join(f"tcp port {port}" for port in ports)
        self.proc = subprocess.Popen(
            [tcpdump, "-i", "lo", "-U", "-n", "-s", "0", "-w", "-", expression],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        )
        self._data = bytearray()
        self._lock = threading.Lock()
        self._stderr: list = []
        ready = threading.Event()
        threading.Thread(target=self._read_stderr, args=(ready,), daemon=True).start()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        if not ready.wait(TCPDUMP_READY_TIMEOUT) or self.proc.poll() is not None:
            self.stop()
            cannot_run(f"tcpdump cannot capture here: {''.join(self._stderr).strip()}")

    def _read_stderr(self, ready: threading.Event) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self._stderr.append(line)
            if "listening on" in line:
                ready.set()
        ready.set()  # tcpdump ended: the caller sees it has exited

    def _read_stdout(self) -> None:
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            with self._lock:
                self._data += chunk

    @property
    def data(self) -> bytes:
        with self._lock:
            return bytes(self._data)

    def flush_through(self, port: int) -> None:
        """Send a sentinel in clear and wait until it is captured: all before it is too."""
        sentinel = f"zdir-sentinel-{uuid.uuid4().hex}".encode()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(sentinel)
        assert wait_until(lambda: sentinel in self.data, CAPTURE_WAIT), "capture lags behind"

    def stop(self) -> bytes:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self._reader.join(5)
        return self.data


@pytest.fixture
def marked_roots(tmp_path):
    """Roots for A and B, each with a file whose name appears nowhere else."""
    markers = {node: f"zdir-marker-{node}-{uuid.uuid4().hex}" for node in ("a", "b")}
    roots = {node: make_tree(tmp_path / node, {"docs": {markers[node]: "x"}})
             for node in markers}
    return roots, markers


def list_under_capture(cluster, marked_roots, server_args, client_args):
    roots, markers = marked_roots
    b = cluster.b(roots["b"], *server_args.get("b", ()))
    # A connects to B as soon as it starts: the capture must run before that handshake.
    a_endpoint = unused_tcp_endpoint()
    capture = Capture([int(a_endpoint.rsplit(":", 1)[1]), b.port])
    try:
        a = cluster.a(roots["a"], b.endpoint, args=server_args.get("a", ()), bind=a_endpoint)
        proc = run_client("--server", a.endpoint, "docs", *client_args)
        assert proc.returncode == 0, proc.stderr_text
        assert sorted(proc.stdout_text.split()) == sorted(markers.values())  # both hops answered
        capture.flush_through(a.port)
    finally:
        data = capture.stop()
    return data, [m.encode() for m in markers.values()]


def test_without_curve_the_names_are_on_the_wire(cluster, marked_roots):
    data, markers = list_under_capture(cluster, marked_roots, {}, ())
    assert b"NULL" in data  # the ZMTP greeting names its mechanism in clear
    for marker in markers:
        assert marker in data, "the capture sees plaintext: the proof below means something"


def test_with_curve_no_name_crosses_either_hop(cluster, marked_roots, keyring):
    server_args = {
        "b": ("--curve-secret", keyring.secret("server_b"),
              "--curve-allow", keyring.allow("server_a")),
        "a": ("--curve-secret", keyring.secret("server_a"),
              "--curve-allow", keyring.allow("client"),
              "--upstream-server-key", keyring.public("server_b")),
    }
    client_args = ("--server-key", keyring.public("server_a"),
                   "--curve-secret", keyring.secret("client"))
    data, markers = list_under_capture(cluster, marked_roots, server_args, client_args)
    assert data.count(b"CURVE") >= 4  # both hops captured: a greeting each way on each
    for marker in markers:
        assert marker not in data
        assert marker[len("zdir-marker-"):] not in data  # not even the random part
