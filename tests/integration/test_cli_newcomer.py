"""Issue 15's small things, on the real commands: names as typed, usage errors, --color, --root,
where a name lives in plain output, symlink targets in -l."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import zdir
from conftest import clean_env, make_tree, run_client

pytestmark = pytest.mark.timeout(60)

SCRIPTS = Path(sys.executable).parent  # where pip put zdir, zdir-server-a, ...


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=clean_env(), timeout=30)


def script(name: str) -> str:
    path = SCRIPTS / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable}")
    return str(path)


def test_version_and_help_name_the_command_as_typed():
    assert run(script("zdir"), "--version").stdout == f"zdir {zdir.__version__}\n"
    module = run(sys.executable, "-m", "zdir.client", "--version")
    assert module.stdout == f"python -m zdir.client {zdir.__version__}\n"
    assert run(script("zdir-server-a"), "--help").stdout.startswith(
        "usage: zdir-server-a [flags]\n")
    help_b = run(sys.executable, "-m", "zdir.server_b", "--help").stdout
    assert help_b.startswith("usage: python -m zdir.server_b [flags]\n")
    assert "  python -m zdir.server_b --root /srv/files" in help_b  # the example, too
    assert run(script("zdir-keys"), "--help").stdout.startswith("usage: zdir-keys [flags] NAME\n")


def test_a_usage_error_is_short_usage_then_the_reason_last():
    proc = run(script("zdir"), "--timeout")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "usage: zdir [flags] [PATH]   (zdir --help lists every flag)",
        "zdir: argument --timeout: expected one argument",
    ]
    server = run(script("zdir-server-b"), "--no-such-flag")
    assert server.returncode == 2
    first, last = server.stderr.splitlines()
    assert first.startswith("usage: zdir-server-b [flags]") and "--no-such-flag" in last


def test_root_that_does_not_exist_says_so(tmp_path):
    missing = run(sys.executable, "-m", "zdir.server_b", "--root", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "file").write_text("x")
    a_file = run(sys.executable, "-m", "zdir.server_b", "--root", str(tmp_path / "file"))
    assert a_file.returncode == 2 and "not a directory" in a_file.stderr


def test_color_takes_its_value_only_after_equals(cluster, two_roots):
    a, _ = cluster.chain(*two_roots)
    always = run_client("--server", a.endpoint, "--color")
    assert always.returncode == 0 and "\x1b[01;34msub\x1b[0m" in always.stdout_text
    path_kept = run_client("--server", a.endpoint, "--color", "sub")  # sub is the PATH
    assert path_kept.returncode == 0, path_kept.stderr_text
    assert path_kept.stdout_text.splitlines() == ["in_a", "in_b"]
    abbreviated = run_client("--server", a.endpoint, "--col", "sub")
    assert abbreviated.stdout_text == path_kept.stdout_text
    never = run_client("--server", a.endpoint, "--color=never")
    assert never.returncode == 0 and "\x1b" not in never.stdout_text
    as_path = run_client("--server", a.endpoint, "--color", "never")  # as GNU ls: a FILE
    assert as_path.returncode == 1 and "never: not found" in as_path.stderr_text


def test_plain_output_says_where_a_shared_name_lives(cluster, two_roots):
    a, _ = cluster.chain(*two_roots)
    plain = run_client("--server", a.endpoint)
    assert plain.returncode == 0, plain.stderr_text
    assert plain.stdout_text.splitlines() == [
        "alpha.txt", "beta.txt", "both.txt  (server_a, server_b)", "sub  (server_a, server_b)"]
    bare = run_client("--server", a.endpoint, "-1")
    assert bare.stdout_text.splitlines() == ["alpha.txt", "beta.txt", "both.txt", "sub"]
    one = run_client("--server", a.endpoint, "--source", "server_b")
    assert one.stdout_text.splitlines() == ["beta.txt", "both.txt", "sub"]


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX symlinks")
def test_long_shows_targets_inside_the_root_only(cluster, tmp_path):
    root = make_tree(tmp_path / "root", {"notes.txt": "n", "sub": {}})
    os.symlink("notes.txt", root / "latest")
    os.symlink("../../etc", root / "sub" / "out")
    os.symlink("/etc/passwd", root / "abs")
    b = cluster.b(root)
    top = run_client("--server", b.endpoint, "-l").stdout_text.splitlines()
    assert [line.split("server_b ", 1)[1] for line in top] == [
        "abs", "latest -> notes.txt", "notes.txt", "sub"]
    sub = run_client("--server", b.endpoint, "-l", "sub").stdout_text
    assert sub.rstrip().endswith("server_b out")
