"""The client's progress line on a terminal: shown while waiting, blanked for the listing or
the error, quiet on Ctrl-C, and never in a pipe or with --json."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys

import pytest

from conftest import clean_env, make_tree, unused_tcp_endpoint
from terminal import posix_only, run_on_tty

pytestmark = pytest.mark.timeout(60)


@posix_only
def test_progress_line_while_waiting_then_blanked_before_the_listing(cluster, tmp_path):
    root = make_tree(tmp_path / "r", {"one": "1", "two": "2"})
    b = cluster.b(root)
    b.freeze()
    try:
        status, shown = run_on_tty("--server", b.endpoint, "--timeout", "20",
                                   when="waiting for", then=lambda client: b.thaw())
    finally:
        b.thaw()
    assert status == 0
    assert f"zdir: waiting for {b.endpoint}... 1." in shown
    blanked = shown.rindex(" \r")
    assert shown[blanked + 2:].split("\r\n") == ["one", "two", ""]


@contextlib.contextmanager
def silent_endpoint():
    """A port that accepts connections and never speaks: the client waits for a handshake."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"


@posix_only
def test_progress_line_gives_way_to_the_error():
    with silent_endpoint() as endpoint:
        status, shown = run_on_tty("--server", endpoint, "--timeout", "20")
    assert status == 4
    assert "waiting for" in shown
    assert shown[shown.rindex(" \r") + 2:].startswith("zdir: Unreachable")


@posix_only
def test_ctrl_c_ends_quietly_with_130():
    with silent_endpoint() as endpoint:
            status, shown = run_on_tty("--server", endpoint, "--timeout", "20",
                                   when="waiting for",
                                   then=lambda client: client.send_signal(signal.SIGINT))
    assert status == 130
    assert "Traceback" not in shown and shown.endswith(" \r")  # the line blanked, nothing more


@posix_only
def test_no_progress_in_a_pipe_nor_with_json():
    endpoint = unused_tcp_endpoint()
    piped = subprocess.Popen([sys.executable, "-m", "zdir.client", "--server", endpoint,
                              "--timeout", "1.5", "--retries", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    status, shown = run_on_tty("--server", endpoint, "--timeout", "1.5", "--retries", "0",
                               "--json")
    _, errors = piped.communicate(timeout=30)
    assert status == piped.returncode == 4
    assert b"waiting" not in errors and "waiting" not in shown
    assert "Unreachable" in shown
