"""Key files: creation and its file modes, loading and its refusals, and socket wiring."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from zdir import keys
from zdir.errors import UsageError

pytestmark = pytest.mark.timeout(30)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def pair(tmp_path):
    return keys.create_key_pair("node", str(tmp_path))


@posix_only
def test_pair_is_written_with_strict_modes_whatever_the_umask(tmp_path):
    old = os.umask(0)  # the worst umask a user could have
    try:
        public, secret = keys.create_key_pair("node", str(tmp_path / "new"))
    finally:
        os.umask(old)
    assert (public, secret) == (str(tmp_path / "new" / "node.key"),
                                str(tmp_path / "new" / "node.key_secret"))
    assert mode(secret) == 0o600 and mode(public) == 0o644
    assert mode(str(tmp_path / "new")) == 0o700
    assert sorted(os.listdir(tmp_path / "new")) == ["node.key", "node.key_secret"]  # no leftovers


def test_pair_loads_and_belongs_together(pair):
    public_file, secret_file = pair
    loaded = keys.load_key_pair(secret_file)
    assert keys.load_public_key(public_file) == loaded.public
    assert zmq.curve_public(loaded.secret) == loaded.public
    assert b"secret-key" not in Path(public_file).read_bytes()


def test_existing_files_are_kept_unless_forced(pair, tmp_path):
    public_file, secret_file = pair
    before = keys.load_key_pair(secret_file)
    with pytest.raises(UsageError, match="--force"):
        keys.create_key_pair("node", str(tmp_path))
    assert keys.load_key_pair(secret_file) == before
    keys.create_key_pair("node", str(tmp_path), force=True)
    assert keys.load_key_pair(secret_file) != before


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../up", "a\\b", "a\x00b"])
def test_names_that_are_not_plain_file_names_are_refused(tmp_path, name):
    with pytest.raises(UsageError):
        keys.create_key_pair(name, str(tmp_path))


@posix_only
@pytest.mark.parametrize("loose", [0o640, 0o604, 0o644, 0o660])
def test_secret_readable_by_others_is_refused_with_the_fix(pair, loose):
    _, secret_file = pair
    os.chmod(secret_file, loose)
    with pytest.raises(UsageError) as info:
        keys.load_key_pair(secret_file)
    assert "readable by others" in info.value.message
    assert f"chmod 600 {secret_file}" in info.value.message


def test_public_file_given_as_secret_is_refused(pair):
    public_file, _ = pair
    with pytest.raises(UsageError, match="no secret key"):
        keys.load_key_pair(public_file)


def test_mismatched_or_broken_key_files_are_refused(pair, tmp_path):
    _, secret_file = pair
    other_public, _ = keys.create_key_pair("other", str(tmp_path))
    text = Path(secret_file).read_text()
    own = keys.load_public_key(secret_file).decode()
    mixed = tmp_path / "mixed.key_secret"
    mixed.write_text(text.replace(own, keys.load_public_key(other_public).decode()))
    mixed.chmod(0o600)
    with pytest.raises(UsageError, match="do not belong together"):
        keys.load_key_pair(str(mixed))
    garbage = tmp_path / "garbage.key"
    garbage.write_text('curve\n    public-key = "short"\n')
    with pytest.raises(UsageError, match="40 characters"):
        keys.load_public_key(str(garbage))
    with pytest.raises(UsageError, match="not a readable CURVE key file"):
        keys.load_public_key(str(tmp_path / "missing.key"))


def test_allow_directory_must_hold_public_keys(pair, tmp_path):
    public_file, _ = pair
    with pytest.raises(UsageError, match="not a directory"):
        keys.allowed_keys(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no public key files"):
        keys.allowed_keys(str(empty))
    assert list(keys.allowed_keys(str(tmp_path))) == [keys.load_public_key(public_file)]


def test_node_security_flag_combinations(pair, tmp_path):
    public_file, secret_file = pair
    assert keys.node_security(None, None, None) == (None, None)
    with pytest.raises(UsageError, match="--curve-allow needs --curve-secret"):
        keys.node_security(None, str(tmp_path), None)
    server, upstream = keys.node_security(secret_file, str(tmp_path), None)
    assert server.allow_dir == str(tmp_path) and upstream is None
    # an upstream hop without a key pair of our own: an ephemeral one, like a client
    server, upstream = keys.node_security(None, None, public_file)
    assert server is None and callable(upstream)


def test_client_needs_the_server_key(pair):
    _, secret_file = pair
    with pytest.raises(UsageError, match="needs --server-key"):
        keys.client_security(secret_file, None)


def handshake_failed(sock: zmq.Socket, monitor: zmq.Socket, timeout_ms: int = 5000) -> bool:
    """Wait for the monitor's verdict on ``sock``'s handshake: True if it failed."""
    while monitor.poll(timeout_ms):
        event = recv_monitor_message(monitor)["event"]
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            return False
        if event & (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            return True
    raise AssertionError("no handshake verdict")


def test_secure_server_lets_in_allowed_keys_and_logs_every_verdict(tmp_path, zmq_context,
                                                                    caplog):
    caplog.set_level(logging.INFO, logger="zdir.keys")
    server_public, server_secret = keys.create_key_pair("server", str(tmp_path / "keys"))
    friend_public, friend_secret = keys.create_key_pair("friend", str(tmp_path / "keys"))
    _, stranger_secret = keys.create_key_pair("stranger", str(tmp_path / "keys"))
    (tmp_path / "allow").mkdir()
    shutil.copy(friend_public, tmp_path / "allow")
    curve = keys.CurveServer(keys.load_key_pair(server_secret), str(tmp_path / "allow"))
    router = zmq_context.socket(zmq.ROUTER)
    gatekeeper = curve.secure(router)
    try:
        router.bind("tcp://127.0.0.1:*")
        endpoint = router.LAST_ENDPOINT.decode()
        verdicts = {}
        for name, secret in (("friend", friend_secret), ("stranger", stranger_secret)):
            sock = zmq_context.socket(zmq.REQ)
            keys.client_security(secret, server_public)(sock)
            monitor = sock.get_monitor_socket()
            sock.connect(endpoint)
            verdicts[name] = handshake_failed(sock, monitor)
            sock.disable_monitor()
            monitor.close()
            if name == "friend":
                sock.send(b"hello")
                assert router.poll(5000) and router.recv_multipart()[-1] == b"hello"
            sock.close()
    finally:
        router.close()
        gatekeeper.stop()  # joins the ZAP thread: every verdict is logged by now
    assert verdicts == {"friend": False, "stranger": True}
    friend_key = keys.load_key_pair(friend_secret).public.decode()
    stranger_key = keys.load_key_pair(stranger_secret).public.decode()
    messages = [r.getMessage() for r in caplog.records if r.name == "zdir.keys"]
    assert f"accepted CURVE client 127.0.0.1 key {friend_key}" in messages
    assert any(m.startswith(f"refused CURVE client 127.0.0.1 key {stranger_key}")
               for m in messages), messages


def test_command_makes_a_pair_and_refuses_to_overwrite(tmp_path):
    command = [sys.executable, "-m", "zdir.keys", "client", "--dir", str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert first.returncode == 0, first.stderr
    assert str(tmp_path / "client.key_secret") in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert again.returncode == 2 and "--force" in again.stderr
    assert keys.main(["client", "--dir", str(tmp_path), "--force"]) == 0
    assert keys.main([]) == 2  # NAME is required
