"""CURVE across real processes: both hops encrypted, allow lists, clear refusals, bad key files."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import run_client, wait_until
from security_keys import standard_keyring

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def keyring(tmp_path):
    return standard_keyring(tmp_path)

LOG_WAIT = 5.0  # the server logs a refusal as it happens; this only bounds a failure


def names(proc) -> list:
    return proc.stdout_text.splitlines()


def test_chain_encrypted_on_both_hops_with_allow_lists(cluster, two_roots, keyring):
    a_root, b_root = two_roots
    # B from the environment, A from flags, the client from the environment again.
    b = cluster.b(b_root, env={"ZDIR_CURVE_SECRET": keyring.secret("server_b"),
                               "ZDIR_CURVE_ALLOW": keyring.allow("server_a")})
    a = cluster.a(a_root, b.endpoint, args=[
        "--curve-secret", keyring.secret("server_a"),
        "--curve-allow", keyring.allow("client"),
        "--upstream-server-key", keyring.public("server_b"),
    ])
    proc = run_client("--server", a.endpoint, env={
        "ZDIR_SERVER_KEY": keyring.public("server_a"),
        "ZDIR_CURVE_SECRET": keyring.secret("client"),
    })
    assert proc.returncode == 0, proc.stderr_text
    assert names(proc) == ["alpha.txt", "beta.txt", "both.txt  (server_a, server_b)",
                           "sub  (server_a, server_b)"]
    assert f"accepted CURVE client 127.0.0.1 key {keyring.key('client')}" in a.log()
    assert f"accepted CURVE client 127.0.0.1 key {keyring.key('server_a')}" in b.log()
    assert "without CURVE" not in a.log() + b.log()


def test_any_client_that_knows_the_key_without_an_allow_list(cluster, two_roots):
    """No --curve-allow: encryption only. A client with no key pair makes one up."""
    _, b_root = two_roots
    from zdir import keys

    public, secret = keys.create_key_pair("b", str(b_root.parent / "keys"))
    b = cluster.b(b_root, "--curve-secret", secret)
    proc = run_client("--server", b.endpoint, "--server-key", public)
    assert proc.returncode == 0, proc.stderr_text
    assert names(proc) == ["beta.txt", "both.txt", "sub"]


REFUSED_WITHIN = 1.0  # seconds, as the client itself reports it: "(after 0.0s)"


def refused_in_time(proc, endpoint: str, says: str) -> None:
    """Exit 4, at once, naming the endpoint and which CURVE mistake it was."""
    assert proc.returncode == 4, proc.stderr_text
    assert says in proc.stderr_text
    assert endpoint in proc.stderr_text and proc.stdout == b""
    reported = float(re.search(r"\(after ([0-9.]+)s\)", proc.stderr_text)[1])
    assert reported <= REFUSED_WITHIN, proc.stderr_text


def test_each_curve_mistake_is_named_at_once_and_others_still_served(cluster, two_roots,
                                                                     keyring):
    _, b_root = two_roots
    b = cluster.b(b_root, "--curve-secret", keyring.secret("server_b"),
                  "--curve-allow", keyring.allow("client"))
    server = ("--server", b.endpoint)
    # No key at all. Either side may see the mechanisms differ first and hang up, and
    # the client tries once: the server logs it only when it was the one to see it.
    refused_in_time(run_client(*server), b.endpoint, "requires CURVE")
    attempts = {
        "does not match --server-key": (*server, "--server-key", keyring.public("server_a"),
                                        "--curve-secret", keyring.secret("client")),
        "refused this client's key": (*server, "--server-key", keyring.public("server_b"),
                                      "--curve-secret", keyring.secret("stranger")),
    }
    with ThreadPoolExecutor(len(attempts)) as pool:
        procs = pool.map(lambda args: run_client(*args), attempts.values())
        for says, proc in zip(attempts, procs):
            refused_in_time(proc, b.endpoint, says)
    refused = f"refused CURVE client 127.0.0.1 key {keyring.key('stranger')}: Unknown key"
    assert wait_until(lambda: refused in b.log(), LOG_WAIT), b.log()
    # Nothing is retried: one handshake each, so at most one line each in the server's
    # log (a wrong server key is logged when the server's side of the race saw it).
    assert b.log().count(refused) == 1, b.log()
    assert b.log().count("wrong server public key") <= 1, b.log()
    good = run_client(*server, "--server-key", keyring.public("server_b"),
                      "--curve-secret", keyring.secret("client"))
    assert good.returncode == 0 and names(good) == ["beta.txt", "both.txt", "sub"]
    assert b.proc.poll() is None


def test_plain_client_of_a_curve_less_server_is_told_to_drop_the_key(cluster, two_roots,
                                                                     keyring):
    _, b_root = two_roots
    b = cluster.b(b_root)
    proc = run_client("--server", b.endpoint, "--server-key", keyring.public("server_b"))
    refused_in_time(proc, b.endpoint, "does not use CURVE")


def test_upstream_hop_refused_by_b_is_a_partial_answer(cluster, two_roots, keyring):
    a_root, b_root = two_roots
    b = cluster.b(b_root, "--curve-secret", keyring.secret("server_b"),
                  "--curve-allow", keyring.allow("client"))  # not A
    a = cluster.a(a_root, b.endpoint, args=[
        "--curve-secret", keyring.secret("server_a"),
        "--upstream-server-key", keyring.public("server_b"),
    ])
    proc = run_client("--server", a.endpoint, "--server-key", keyring.public("server_a"))
    assert proc.returncode == 3, proc.stderr_text
    assert names(proc) == ["alpha.txt", "both.txt", "sub"]
    assert "auth_failed" in proc.stderr_text
    assert "refused this client's key" in proc.stderr_text
    assert f"refused CURVE client 127.0.0.1 key {keyring.key('server_a')}" in b.log()


def test_plaintext_client_against_plaintext_server_still_works(cluster, two_roots):
    _, b_root = two_roots
    b = cluster.b(b_root)
    assert run_client("--server", b.endpoint).returncode == 0


@pytest.mark.parametrize("flags, message", [
    (("--curve-allow", "{allow}"), "--curve-allow needs --curve-secret"),
    (("--curve-secret", "{public}"), "holds no secret key"),
    (("--curve-secret", "{missing}"), "not a readable CURVE key file"),
    (("--curve-secret", "{secret}", "--curve-allow", "{empty}"), "no public key files"),
    (("--upstream-server-key", "{missing}"), "not a readable CURVE key file"),
])
def test_servers_refuse_to_start_on_bad_key_flags(cluster, two_roots, keyring, tmp_path,
                                                   flags, message):
    _, b_root = two_roots
    (tmp_path / "empty").mkdir()
    paths = {"allow": keyring.allow("client"), "public": keyring.public("server_b"),
             "secret": keyring.secret("server_b"), "missing": str(tmp_path / "nope.key"),
             "empty": str(tmp_path / "empty")}
    server = cluster.b(b_root, *(f.format(**paths) for f in flags), wait=False)
    assert server.proc.wait(10) == 2
    assert message in server.log()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_secret_key_readable_by_others_is_refused_by_servers_and_clients(cluster, two_roots,
                                                                         keyring):
    _, b_root = two_roots
    os.chmod(keyring.secret("server_b"), 0o644)
    os.chmod(keyring.secret("client"), 0o640)
    server = cluster.b(b_root, "--curve-secret", keyring.secret("server_b"), wait=False)
    assert server.proc.wait(10) == 2
    assert "readable by others (mode 0644)" in server.log()
    assert f"chmod 600 {keyring.secret('server_b')}" in server.log()
    client = run_client("--server-key", keyring.public("server_b"),
                        "--curve-secret", keyring.secret("client"))
    assert client.returncode == 2 and "readable by others (mode 0640)" in client.stderr_text


def test_client_secret_without_server_key_is_a_usage_error(keyring):
    proc = run_client("--curve-secret", keyring.secret("client"))
    assert proc.returncode == 2 and "--curve-secret needs --server-key" in proc.stderr_text
