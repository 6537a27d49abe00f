"""The README, followed literally: every command block, in order, in a fresh shell.

After the two set-up commands (the ``.venv`` they make is the one this test
uses), each ``sh`` block runs in ``bash -e -o pipefail`` from the top of the tree,
with no venv on PATH and no ZDIR_* variables, after the blocks the README marks
``activate``: a bare ``python`` or ``zdir`` without activation fails here as it
would for a reader. Servers run in the foreground, one process each, on free
loopback ports; every endpoint the README names (``tcp://10.0.0.2:5556``,
``tcp://127.0.0.1:5555``) is replaced by the one that server really bound, and
ZDIR_SERVER points at the stand-in for the client's default server. Every server
is stopped by pid at the end.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List

import pytest

from docblocks import (REPO, VENV_BIN, ServerProcess, describe, fresh_shell_env,
                       read_blocks, run_script, server_command, substitute, unmarked)
from zdir import config

pytestmark = pytest.mark.timeout(240)

README = REPO / "README.md"


def test_every_command_block_says_how_it_is_tested():
    assert unmarked(read_blocks(README)) == []


def test_readme_top_to_bottom(tmp_path: Path):
    if not (VENV_BIN / "python").exists():
        pytest.skip(f"no {VENV_BIN}/python: run the README's set-up command first")
    blocks = read_blocks(README)
    setup = [b for b in blocks if b.kind == "setup"]
    assert blocks and blocks[0] is setup[0], "the set-up commands come first"
    assert setup[0].commands[1] == ".venv/bin/python -m pytest"
    prelude: List[str] = []
    endpoints: Dict[str, str] = {}
    servers: List[ServerProcess] = []
    ran: List[int] = []
    try:
        for block in blocks:
            if block.kind in ("", "setup", "skip") or block.lang not in ("sh", "python", "console"):
                continue
            if block.settings.get("needs") and not shutil.which(block.settings["needs"]):
                continue  # not in the README's promise: the reader installs jq
            env = fresh_shell_env()
            if config.DEFAULT_SERVER in endpoints:
                env["ZDIR_SERVER"] = endpoints[config.DEFAULT_SERVER]
            if block.kind == "servers":
                for line in block.commands:
                    command, named = server_command(substitute(line, endpoints))
                    server = ServerProcess(command, prelude=prelude, env=env, cwd=REPO,
                                           log_path=tmp_path / f"server-{len(servers)}.log")
                    servers.append(server)
                    endpoints[named] = server.wait_ready()
            elif block.kind == "output":
                for command, printed in block.session:
                    script = "\n".join([*prelude, substitute(command, endpoints)])
                    proc = run_script(script, env=env, cwd=REPO)
                    assert proc.returncode == 0, describe(block, proc, script)
                    assert proc.stdout.splitlines() == printed, describe(block, proc, script)
            else:
                body = substitute(block.text, endpoints)
                if block.kind == "python":
                    program = tmp_path / f"block-{block.line}.py"
                    program.write_text(body)
                    body = f"python {program}\n"
                script = "\n".join([*prelude, body])
                proc = run_script(script, env=env, cwd=REPO)
                assert proc.returncode == 0, describe(block, proc, script)
                assert "Traceback" not in proc.stderr, describe(block, proc, script)
                if block.kind == "activate":
                    prelude.append(block.text)
            ran.append(block.line)
    finally:
        for server in reversed(servers):
            server.stop()
    assert len(servers) == 4, "B and A by hand, then B and A on 'two hosts'"
    assert ran, "no block ran"


def test_activation_is_needed(tmp_path: Path):
    """The check above can fail: without the README's activation, its commands do not run."""
    env = fresh_shell_env()
    if shutil.which("zdir", path=env["PATH"]):
        pytest.skip("a zdir command outside the venv is on PATH")
    first_run = next(b for b in read_blocks(README) if b.kind == "run")
    proc = run_script(first_run.text, env=env, cwd=REPO, timeout=30)
    assert proc.returncode != 0


def test_readme_marks_the_two_hosts():
    """The two-host commands are marked with their host, so a reader sees where each runs."""
    hosts = [b.settings.get("host") for b in read_blocks(README) if b.kind == "servers"]
    assert hosts == [None, "B", "A"]
