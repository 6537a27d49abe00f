"""Test hygiene shared by every test: real processes, free ports, bounded waits, stop by pid."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

READY = re.compile(r"^(?P<name>\S+) listening on (?P<endpoint>\S+) root=(?P<root>.*)$")
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
LOOPBACK_ANY = "tcp://127.0.0.1:*"


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for a child: no ZDIR_* from the developer's shell, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDIR_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("NO_COLOR", None)
    env.update(extra or {})
    return env


class Server:
    """A real ``python -m zdir.server_a|server_b`` process, started on a free port."""

    def __init__(self, module: str, args: Sequence[str], log_path: Path,
                 env: Optional[Dict[str, str]] = None, prefix: Sequence[str] = (),
                 preexec_fn: Optional[Callable[[], None]] = None) -> None:
        self.module = module
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", f"zdir.{module}", *self.args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            env=clean_env(env),
            preexec_fn=preexec_fn,  # e.g. resource limits for the server alone
        )
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.endpoint = ""
        self.name = ""

    def _read_stdout(self) -> None:
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> "Server":
        """Block until the ready line arrives (the only way tests learn the port)."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            message = f"{self.module} printed no ready line in {timeout}s: {self.log()}"
            raise AssertionError(message) from None
        match = READY.match(line or "")
        if not match:
            self.stop()
            log = self.log_path.read_text(errors="replace")  # closed by stop(): read it as is
            raise AssertionError(f"{self.module}: unexpected first line {line!r}: {log}")
        self.endpoint = match["endpoint"]
        self.name = match["name"]
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (after SIGCONT, in case it is frozen) and wait; SIGKILL if it lingers."""
        if self.proc.poll() is None:
            if hasattr(signal, "SIGCONT"):
                os.kill(self.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)


class Cluster:
    """Starts servers for one test and stops every one of them, by pid, at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.servers: List[Server] = []

    def start(self, module: str, root: Path, *args: str, bind: str = LOOPBACK_ANY,
              env: Optional[Dict[str, str]] = None, wait: bool = True,
              prefix: Sequence[str] = (),
              preexec_fn: Optional[Callable[[], None]] = None) -> Server:
        log = self.tmp_path / f"{module}-{len(self.servers)}.log"
        full = ["--root", str(root), "--bind", bind, *args]
        server = Server(module, full, log, env=env, prefix=prefix, preexec_fn=preexec_fn)
        self.servers.append(server)
        return server.wait_ready() if wait else server

    def b(self, root: Path, *args: str, **kwargs) -> Server:
        return self.start("server_b", root, *args, **kwargs)

    def a(self, root: Path, *upstreams: str, args: Sequence[str] = (), **kwargs) -> Server:
        ups = [arg for ep in upstreams for arg in ("--upstream", ep)]
        return self.start("server_a", root, *ups, *args, **kwargs)

    def chain(self, a_root: Path, b_root: Path) -> Tuple[Server, Server]:
        """B, then A in front of it: the product's usual shape."""
        b = self.b(b_root)
        return self.a(a_root, b.endpoint), b

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture
def cluster(tmp_path: Path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop_all()


def run_client(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60,
               input: Optional[bytes] = None,
               prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run ``python -m zdir.client`` to completion; stdout and stderr as text.

    ``prefix`` runs it under another command, e.g. ``ip netns exec NS``.
    """
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "zdir.client", *args],
        capture_output=True,
        env=clean_env(env),
        timeout=timeout,
        input=input,
    )
    proc.stdout_text = proc.stdout.decode("utf-8", "replace")  # type: ignore[attr-defined]
    proc.stderr_text = proc.stderr.decode("utf-8", "replace")  # type: ignore[attr-defined]
    return proc


def make_tree(root: Path, spec: Dict[str, object]) -> Path:
    """Build files (str or bytes content) and directories (dict) under root."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in spec.items():
        path = root / name
        if isinstance(content, dict):
            make_tree(path, content)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content))
    return root


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll a condition that has no signal to wait on (e.g. a port being free)."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def unused_tcp_endpoint() -> str:
    """A loopback endpoint with a port that is free right now (for restart-on-same-port tests).

    Below every system's range of ephemeral ports (Linux from 32768, macOS and Windows
    from 49152): while the server is down between two starts, no outgoing connection of
    this or any other process can be given the port (nor connect to itself on it, as a
    reconnecting client may, TCP's simultaneous open), so the restart can bind it again.
    """
    import random
    import socket

    for _ in range(100):
        port = random.randrange(20000, 32768)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return f"tcp://127.0.0.1:{port}"
    raise RuntimeError("no free port between 20000 and 32767")


@pytest.fixture
def two_roots(tmp_path: Path):
    """Sample roots for A and B with a name present on both."""
    a = make_tree(tmp_path / "a", {"alpha.txt": "a", "both.txt": "from a", "sub": {"in_a": "1"}})
    b = make_tree(tmp_path / "b", {"beta.txt": "bb", "both.txt": "from b!", "sub": {"in_b": "2"}})
    return a, b


@pytest.fixture
def zmq_context():
    """A context for raw sockets in the test: LINGER 0, terminated in a thread so a hang fails."""
    import zmq

    context = zmq.Context()
    context.setsockopt(zmq.LINGER, 0)
    try:
        yield context
    finally:
        closer = threading.Thread(target=context.destroy, kwargs={"linger": 0}, daemon=True)
        closer.start()
        closer.join(STOP_TIMEOUT)
        assert not closer.is_alive(), "the test's ZeroMQ context did not terminate"


def proc_status(pid: int, key: str) -> int:
    """One number from /proc/PID/status (``VmRSS``, ``VmHWM`` in KiB, ``Threads``; Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} for pid {pid}")


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB, from /proc (Linux only)."""
    return proc_status(pid, "VmRSS")


# -- fake peers for the request helper (tests/linkpeers.py), used by tests/faults/test_link_*.py
# linkpeers imports this module, so each fixture imports it when it runs.

@pytest.fixture
def loop(zmq_context):
    """An Exchange driven step by step, as node.serve runs it (linkpeers.Loop)."""
    from linkpeers import Loop

    lp = Loop(zmq_context)
    try:
        yield lp
    finally:
        lp.exchange.close()


@pytest.fixture
def routers(zmq_context):
    """Make fake ROUTER peers; every one still open is closed at the end."""
    from linkpeers import Router

    made: List[Router] = []

    def make(endpoint: str = LOOPBACK_ANY, **kwargs) -> Router:
        made.append(Router(zmq_context, endpoint, **kwargs))
        return made[-1]

    try:
        yield make
    finally:
        for router in made:
            if not router.sock.closed:
                router.close()


@pytest.fixture
def peer_process():
    """Start ROUTERs in child processes (to freeze or kill); every one is stopped at the end."""
    from linkpeers import PeerProcess

    started: List[PeerProcess] = []

    def start() -> PeerProcess:
        started.append(PeerProcess())
        return started[-1]

    try:
        yield start
    finally:
        for peer in started:
            peer.stop()


@pytest.fixture
def zmtp_peer():
    """A peer that speaks ZMTP byte by byte (tests/zmtp.py), closed at the end."""
    from zmtp import ZmtpPeer

    peer = ZmtpPeer()
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(params=[True, False], ids=["dir-fd", "by-path"])
def open_mode(request, monkeypatch):
    """A lister test twice: with directory descriptors, and by path as on Windows."""
    from zdir import lister

    if request.param and not lister.USE_DIR_FD:
        pytest.skip("this platform has no O_NOFOLLOW directory descriptors")
    monkeypatch.setattr(lister, "USE_DIR_FD", request.param)
