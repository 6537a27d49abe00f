"""examples/fleet/tree.py end to end: simulated or real leaves, relays, a top node, the client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env
from zdir.nodeset import expand

TREE = Path(__file__).resolve().parents[2] / "examples" / "fleet" / "tree.py"


pytestmark = pytest.mark.timeout(120)


def run_tree(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TREE), *args], capture_output=True, text=True,
                          env=clean_env(), timeout=110)


def test_a_simulated_fleet_through_relays_is_complete():
    proc = run_tree("--nodes", "60", "--relays", "3", "--entries", "5", "--", "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    names = [s["name"] for s in document["sources"]]
    assert sorted(names) == sorted(["top", "relay01", "relay02", "relay03",
                                    *expand("node[0001-0060]")])
    assert all(s["ok"] for s in document["sources"])
    assert len(document["entries"]) == 60 * 5
    assert "tree: top (tcp://127.0.0.1:" in proc.stderr


def test_failed_leaves_are_named_in_the_summary():
    proc = run_tree("--nodes", "60", "--relays", "3", "--entries", "5", "--refuse", "3",
                    "--freeze", "1")
    assert proc.returncode == 3, proc.stderr
    summary = [line for line in proc.stderr.splitlines() if line.startswith("zdir: ")]
    assert len(summary) == 1 and summary[0].startswith("zdir: 60 of 64 sources answered")
    lines = proc.stdout.splitlines()  # each name once, with the 56 leaves that have it
    assert len(lines) == 5
    assert all(len(expand(line.split("  ", 1)[1].strip("()"))) == 56 for line in lines)


def test_real_leaves():
    proc = run_tree("--real", "4", "--relays", "2", "--", "--ping", "-v")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert sorted(names) == sorted(["top", "relay01", "relay02", *expand("node[0001-0004]")])
