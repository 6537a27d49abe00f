"""Every example in examples/ runs (or, for the systemd units, parses) as its comments promise."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import clean_env

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UNITS = sorted((EXAMPLES / "systemd").glob("*.service"))
SCRIPTS_DIR = Path(sys.executable).parent  # where pip put zdir-server-a and zdir-server-b


def run_example(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, env=clean_env(), timeout=50)


def processes_mentioning(text: str) -> List[str]:
    """Command lines of running processes that contain text (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process ended while we looked
            continue
        if any(text in word for word in words):
            found.append(" ".join(words))
    return found


def listed_by_example(script: str, roots: Dict[str, str]) -> str:
    """Run an example with --json: every source answers, with the names of its own root.

    ``roots`` maps source names to sample directories, in the chain's order; the
    example's stderr is returned.
    """
    proc = run_example(script, "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert [(s["name"], s["ok"]) for s in document["sources"]] == [(n, True) for n in roots]
    assert {(e["source"], e["name"]) for e in document["entries"]} == {
        (source, path.name) for source, root in roots.items()
        for path in (EXAMPLES / root).iterdir() if not path.name.startswith(".")}
    return proc.stderr


# -- systemd units ------------------------------------------------------------------------------

def test_there_is_a_unit_for_each_server():
    assert [unit.name for unit in UNITS] == ["zdir-server-a.service", "zdir-server-b.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_unit_settings_are_real_flags(unit):
    text = unit.read_text()
    command = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
    script = Path(command).name
    assert f'{script} = "zdir.' in (EXAMPLES.parent / "pyproject.toml").read_text()
    module = "zdir." + script.replace("zdir-", "").replace("-", "_")
    help_text = " ".join(subprocess.run([sys.executable, "-m", module, "--help"],
                                        capture_output=True, text=True, env=clean_env(),
                                        timeout=30).stdout.split())  # unwrapped
    variables = set(re.findall(r"\bZDIR_[A-Z_]+", text))
    assert variables >= {"ZDIR_ROOT", "ZDIR_BIND", "ZDIR_CURVE_SECRET"}
    assert {v for v in variables if f"env {v}" not in help_text} == set()
    root = re.search(r"^Environment=ZDIR_ROOT=(\S+)", text, re.M).group(1)
    assert re.search(rf"^ReadOnlyPaths={re.escape(root)}$", text, re.M)
    for hardening in ("ProtectSystem=strict", "DynamicUser=yes", "NoNewPrivileges=yes",
                      "PrivateTmp=yes", "RestrictAddressFamilies="):
        assert f"\n{hardening}" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("curve", [False, True], ids=["as-shipped", "curve-lines-enabled"])
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_unit_passes_systemd_analyze_verify(unit, curve, tmp_path):
    text = unit.read_text()
    command = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
    installed = SCRIPTS_DIR / Path(command).name
    if not installed.exists():
        pytest.skip(f"verify needs ExecStart's program; {installed} is not installed")
    text = text.replace(command, str(installed))  # verify checks that the program exists
    if curve:  # the commented CURVE lines must be valid too, once a user enables them
        text = re.sub(r"^#((LoadCredential|Environment)=)", r"\1", text, flags=re.M)
    copy = tmp_path / unit.name
    copy.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                          text=True, timeout=30)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


# -- scripts ------------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals stop the servers")
def test_chain3_lists_three_roots_and_stops_every_server():
    errors = listed_by_example("chain3.py", {"server_a": "a", "server_b": "b", "server_c": "c"})
    assert "chain: server_a (tcp://" in errors
    if sys.platform.startswith("linux"):
        assert processes_mentioning(str(EXAMPLES / "c")) == []


@pytest.mark.skipif(importlib.util.find_spec("zdir.keys") is None,
                    reason="zdir.keys (python -m zdir.keys NAME --dir DIR) is not there yet")
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals stop the servers")
def test_curve_chain_lists_over_curve_and_turns_a_stranger_away():
    errors = listed_by_example("curve_chain.py", {"server_a": "a", "server_b": "b"})
    assert "a stranger's key is turned away (exit 4)" in errors
    if sys.platform.startswith("linux"):
        assert processes_mentioning("zdir-curve-") == []
