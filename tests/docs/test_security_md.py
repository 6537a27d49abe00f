"""docs/security.md's deployment, run as written on three machines in network namespaces.

    alice 10.0.0.3 ──┐
    A     10.0.0.1 ──┼── a bridge, in a namespace of its own
    B     10.0.0.2 ──┘

A and B are each a network namespace and a mount namespace in which /etc, /opt
and /srv are that host's own directories (/etc a copy of this machine's), so
the document's commands run literally: ``useradd`` adds ``zdir`` to the copy of
/etc/passwd, /opt/zdir and /etc/zdir are made in the host's directories, and
nothing changes on the machine running the test. alice is a network namespace
with zdir on PATH (the README's venv, active) and a home of her own.

Stand-ins, for what test machines lack:

- ``scp`` copies between the hosts' directories (no ssh server runs between
  namespaces); a remote path is looked up as on that host, relative ones in the
  directory where that host's commands run.
- ``sudo``, only when the machine has none: the test runs as root, so it runs the
  command, or with ``-u USER`` runs it through ``runuser``.
- The block marked ``needs=internet`` (``pip install``) gets the machine's network
  instead of the host's namespace, which has none; it still runs in the host's
  mount namespace. So this test downloads pyzmq and msgpack like a real
  deployment does, unless pip finds them in a local index or cache.

Needs root, iproute2 and util-linux (unshare, runuser); skips with the reason
otherwise (the netns marker lets CI select it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from conftest import clean_env
from docblocks import (REPO, Block, ServerProcess, describe, read_blocks, run_script,
                       server_command, unmarked)

pytestmark = [pytest.mark.netns, pytest.mark.timeout(420)]

SECURITY_MD = REPO / "docs" / "security.md"
ADDRESSES = {"B": "10.0.0.2", "A": "10.0.0.1", "alice": "10.0.0.3"}
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BLOCK_TIMEOUT = 240  # the pip install, on a slow index


def why_not() -> Optional[str]:
    if not sys.platform.startswith("linux"):
        return "network and mount namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root to create network and mount namespaces"
    for tool in ("ip", "unshare", "runuser", "useradd"):
        if shutil.which(tool, path=SYSTEM_PATH) is None:
            return f"needs {tool} (iproute2, util-linux, passwd)"
    if shutil.which("python3", path=SYSTEM_PATH) is None:
        return "the document installs with the system's python3, and there is none"
    for path in ("/etc", "/opt", "/srv"):
        if not os.path.isdir(path):
            return f"needs a {path} directory to mount each host's own over"
    return None


def ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


class Machines:
    """Three hosts on one Ethernet segment; each host's files under one directory."""

    def __init__(self, base: Path) -> None:
        tag = f"zdoc-{os.getpid() % 100000}-{secrets.token_hex(2)}"
        self.base = base
        self.lan = f"{tag}-lan"
        self.ns = {role: f"{tag}-{role}" for role in ADDRESSES}
        self.created: List[str] = []
        self.bin = base / "bin"  # the stand-ins

    def home(self, role: str) -> Path:
        """Where that host's commands run (alice: her home)."""
        return self.base / role / ("home" if role == "alice" else "work")

    def build(self, a_root: Dict[str, str], b_root: Dict[str, str]) -> None:
        ip("netns", "add", self.lan)
        self.created.append(self.lan)
        ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        ip("-n", self.lan, "link", "set", "br0", "up")
        for role, address in ADDRESSES.items():
            ns = self.ns[role]
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            port = f"p-{role}"
            ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
               "netns", self.lan)
            ip("-n", self.lan, "link", "set", port, "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
        for role, files in (("A", a_root), ("B", b_root)):
            self._host_tree(role, files)
        self.home("alice").mkdir(parents=True)
        self._enter_script("alice", mounts=False)
        self._stand_ins()

    def _host_tree(self, role: str, files: Dict[str, str]) -> None:
        top = self.base / role
        top.mkdir(mode=0o755)
        subprocess.run(["cp", "-a", "/etc", str(top / "etc")], check=True, timeout=60)
        shutil.rmtree(top / "etc" / "zdir", ignore_errors=True)  # a fresh machine
        (top / "opt").mkdir(mode=0o755)
        for entry in os.scandir("/opt"):  # what this machine keeps there (pip's local index)
            if entry.name != "zdir":
                mount_point = top / "opt" / entry.name
                if entry.is_dir():
                    mount_point.mkdir()
                else:
                    mount_point.touch()
        root = top / "srv" / "files"
        root.mkdir(parents=True)
        for name, text in files.items():
            (root / name).write_text(text)
        for path in (top / "srv", root):
            os.chmod(path, 0o755)
        work = self.home(role)
        work.mkdir()
        shutil.copytree(REPO, work / "zdir", symlinks=True, ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
            ".pytest_cache", ".cache"))
        self._enter_script(role, mounts=True)

    def _enter_script(self, role: str, mounts: bool) -> None:
        top = self.base / role
        lines = ["#!/bin/bash", "set -e"]
        if mounts:
            for entry in os.scandir(top / "opt"):
                lines.append(f"mount --rbind /opt/{entry.name} {top}/opt/{entry.name}")
            lines += [f"mount --rbind {top}/opt /opt", f"mount --bind {top}/etc /etc",
                      f"mount --bind {top}/srv /srv"]
        lines += [f"cd {self.home(role)}", 'exec "$@"']
        script = top / "enter"
        script.write_text("\n".join(lines) + "\n")
        script.chmod(0o755)

    def _stand_ins(self) -> None:
        self.bin.mkdir()
        hosts = {address: (str(self.base / role) if role != "alice" else "",
                           str(self.home(role)))
                 for role, address in ADDRESSES.items()}
        scp = self.bin / "scp"
        scp.write_text(f"#!{sys.executable}\n" + SCP_STAND_IN.replace("HOSTS", repr(hosts)))
        if shutil.which("sudo", path=SYSTEM_PATH) is None:
            sudo = self.bin / "sudo"
            sudo.write_text(SUDO_STAND_IN)
        for tool in self.bin.iterdir():
            tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def prefix(self, role: str, network: bool = True) -> List[str]:
        """Run a command on that host: in its namespaces, in its working directory."""
        enter = [str(self.base / role / "enter")]
        if role != "alice":
            enter = ["unshare", "--mount", "--propagation", "private", *enter]
        return (["ip", "netns", "exec", self.ns[role]] if network else []) + enter

    def env(self, role: str) -> Dict[str, str]:
        env = clean_env()
        for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYENV_VERSION"):
            env.pop(name, None)
        path = [str(self.bin), SYSTEM_PATH]
        if role == "alice":  # zdir installed as the README shows, its venv active
            path.insert(1, str(Path(sys.executable).parent))
        env["PATH"] = os.pathsep.join(path)
        env["HOME"] = str(self.home(role))
        return env

    def remove(self) -> None:
        """Kill what is left in the namespaces, by pid, then delete them."""
        for ns in self.created:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True, timeout=10).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


SCP_STAND_IN = '''"""scp between the test's hosts: HOST:PATH is looked up in that host's files."""
import os, re, shutil, sys
hosts = HOSTS  # address: (the host's directory for absolute paths, its working directory)
def where(arg):
    match = re.match(r"^(?:[^@/:]+@)?([0-9.]+):(.*)$", arg)
    if not match:
        return arg
    top, home = hosts[match[1]]
    path = os.path.expanduser(match[2]) if match[2].startswith("~") else match[2]
    if path.startswith("~/"):
        path = path[2:]
    return top + path if path.startswith("/") else os.path.join(home, path)
source, target = [where(arg) for arg in sys.argv[1:] if not arg.startswith("-")]
shutil.copy(source, target)
'''

SUDO_STAND_IN = '''#!/bin/sh
# sudo for a machine without it: the test runs as root already.
if [ "$1" = "-u" ]; then user=$2; shift 2; exec runuser -u "$user" -- "$@"; fi
exec "$@"
'''

A_FILES = {"a-only.txt": "on A\n", "shared.txt": "A's copy\n"}
B_FILES = {"b-only.txt": "on B\n", "shared.txt": "B's copy, longer\n"}


def test_every_command_block_says_how_it_is_tested():
    assert unmarked(read_blocks(SECURITY_MD)) == []


def test_every_block_names_its_host():
    blocks = [b for b in read_blocks(SECURITY_MD) if b.kind in ("run", "servers")]
    assert blocks and all(set(b.settings.get("host", "").split(",")) <= set(ADDRESSES)
                          and b.settings.get("host") for b in blocks)


def test_deployment_as_written(tmp_path: Path):
    reason = why_not()
    if reason:
        pytest.skip(reason)
    machines = Machines(tmp_path)
    servers: Dict[str, ServerProcess] = {}
    said: Dict[int, str] = {}
    try:
        machines.build(A_FILES, B_FILES)
        for block in read_blocks(SECURITY_MD):
            if block.kind == "run":
                for role in block.settings["host"].split(","):
                    said[block.line] = run_on(machines, role, block)
            elif block.kind == "servers":
                role = block.settings["host"]
                (line,) = block.commands
                command, endpoint = server_command(line, bind=None)
                server = ServerProcess(command, env=machines.env(role), cwd=tmp_path,
                                       log_path=tmp_path / f"server-{role}.log",
                                       prefix=machines.prefix(role))
                servers[role] = server
                assert server.wait_ready() == endpoint
        listing = said[max(said)]  # the last block: alice lists
        for name in (*A_FILES, *B_FILES):
            assert name in listing
        assert "server_b" in listing and "server_a" in listing
        b_log, a_log = (servers[r].log_path.read_text(errors="replace") for r in "BA")
        assert f"accepted CURVE client {ADDRESSES['A']}" in b_log
        assert f"accepted CURVE client {ADDRESSES['alice']}" in a_log
        # Someone without alice's keys gets nothing.
        stranger = subprocess.run(
            [*machines.prefix("alice"), "zdir", "--server", "tcp://10.0.0.1:5555",
             "--timeout", "1", "--retries", "0"],
            env=machines.env("alice"), capture_output=True, text=True, timeout=60)
        assert stranger.returncode == 4 and stranger.stdout == "", stranger.stderr
    finally:
        for server in servers.values():
            server.stop()
        machines.remove()


def run_on(machines: Machines, role: str, block: Block) -> str:
    """Run a block on one host; it must succeed. Returns what it printed."""
    network = block.settings.get("needs") != "internet"
    proc = run_script(block.text, env=machines.env(role), cwd=machines.base,
                      prefix=machines.prefix(role, network=network), timeout=BLOCK_TIMEOUT)
    assert proc.returncode == 0, f"on {role}: " + describe(block, proc, block.text)
    return proc.stdout
