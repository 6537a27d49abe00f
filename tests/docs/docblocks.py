"""Reading the shell and Python blocks of a Markdown document, and running them as written.

A block that a reader would paste is preceded by a note saying how a test runs it::

    <!-- doc-test: run -->            a shell script; every command must succeed
    <!-- doc-test: servers host=B --> each line starts a server (run in the foreground)
    <!-- doc-test: activate -->       changes the shell: kept and run before every later block
    <!-- doc-test: output -->         a console session: each ``$ command`` must print what follows
    <!-- doc-test: python -->         a Python program
    <!-- doc-test: setup -->          the set-up commands (the tests run inside their result)
    <!-- doc-test: skip: REASON -->   not run, and why

Words after the kind are ``key=value`` settings (``host=B``, ``needs=jq``). A block
with no note is an error, so that no command in the documents goes untested by
accident.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import subprocess
import threading
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from conftest import READY, READY_TIMEOUT, STOP_TIMEOUT, clean_env

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
COMMAND_LANGUAGES = ("sh", "bash", "shell", "console", "python")
_NOTE = re.compile(r"^<!--\s*doc-test:\s*(?P<body>.*?)\s*-->$")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\S*)\s*$")
_ENDPOINT = re.compile(r"tcp://[A-Za-z0-9.\-\[\]:]+?:\d+")
_BIND = re.compile(r"--bind\s+(?P<endpoint>\S+)")


class Block(NamedTuple):
    """One fenced block and the note above it."""

    kind: str  # run, servers, activate, python, setup, skip; "" when there is no note
    settings: Dict[str, str]
    reason: str  # for skip
    lang: str
    text: str
    line: int  # of the opening fence, 1-based

    @property
    def commands(self) -> List[str]:
        """Lines that are commands: not blank, not only a comment; continuations joined."""
        lines: List[str] = []
        pending = ""
        for raw in self.text.splitlines():
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if line and not line.startswith("#"):
                lines.append(line)
        return lines


    @property
    def session(self) -> List[Tuple[str, List[str]]]:
        """A console block's ``$ command`` lines, each with the lines it prints."""
        pairs: List[Tuple[str, List[str]]] = []
        for line in self.text.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], []))
            elif pairs:
                pairs[-1][1].append(line)
        return pairs


def read_blocks(path: Path) -> List[Block]:
    """Every fenced block of a Markdown file, with its doc-test note (if any)."""
    blocks: List[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    note: Optional[str] = None
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _FENCE.match(line)
        if match:
            indent = len(match["indent"])
            start = index
            body: List[str] = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith("```"):
                body.append(lines[index][indent:])
                index += 1
            blocks.append(_block(note, match["lang"], "\n".join(body) + "\n", start + 1))
            note = None
        elif _NOTE.match(line.strip()):
            note = _NOTE.match(line.strip())["body"]
        elif line.strip():
            note = None  # a note belongs to the block right below it
        index += 1
    return blocks


def _block(note: Optional[str], lang: str, text: str, line: int) -> Block:
    if note is None:
        return Block("", {}, "", lang, text, line)
    kind, _, rest = note.partition(" ")
    if kind.endswith(":"):  # skip: REASON
        return Block(kind[:-1], {}, rest.strip(), lang, text, line)
    settings = dict(word.split("=", 1) for word in rest.split() if "=" in word)
    return Block(kind, settings, "", lang, text, line)


def unmarked(blocks: Sequence[Block]) -> List[str]:
    """Blocks a reader would run that carry no note, as 'line N' for the failure message."""
    return [f"line {b.line}" for b in blocks if b.lang in COMMAND_LANGUAGES and not b.kind]


def substitute(text: str, endpoints: Dict[str, str]) -> str:
    """Endpoints of the document replaced by the ones the test's servers really bound."""
    return _ENDPOINT.sub(lambda m: endpoints.get(m.group(0), m.group(0)), text)


def fresh_shell_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A new shell's environment: no venv active, no ZDIR_* settings from the developer.

    The venv's bin is taken off PATH, so a bare ``python`` or ``zdir`` in a
    document fails unless the document activated the venv first.
    """
    env = clean_env(extra)
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    venv_bin = str(VENV_BIN)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin
    )
    return env


def run_script(script: str, *, env: Dict[str, str], cwd: Path, timeout: float = 60,
               prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run a block as bash does a pasted script, stopping at the first command that fails."""
    return subprocess.run(
        [*prefix, "bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def describe(block: Block, proc: subprocess.CompletedProcess, script: str) -> str:
    """What a failed block was, ran and said: for the assertion message."""
    return (f"block at line {block.line} failed with status {proc.returncode}\n"
            f"--- ran:\n{script}\n--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}")


class ServerProcess:
    """A server started from a document's command line; stopped by pid."""

    def __init__(self, command: str, *, env: Dict[str, str], cwd: Path, log_path: Path,
                 prelude: Sequence[str] = (), prefix: Sequence[str] = ()) -> None:
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, "ab")
        # exec: the pid we hold is the server's own, so SIGTERM reaches it.
        self.proc = subprocess.Popen(
            [*prefix, "bash", "-e", "-c", "\n".join([*prelude, f"exec {command}"])],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.endpoint = ""

    def _read_stdout(self) -> None:
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> str:
        """The endpoint from the ready line; fails with the server's log if none comes."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        match = READY.match(line or "")
        if not match:
            self.stop()
            raise AssertionError(f"{self.command!r} printed no ready line ({line!r}): "
                                 f"{self.log_path.read_text(errors='replace')}")
        self.endpoint = match["endpoint"]
        return self.endpoint

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL if it lingers; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        self._log.close()
        return self.proc.returncode


def server_command(line: str, bind: Optional[str] = "tcp://127.0.0.1:*") -> Tuple[str, str]:
    """A server line as the test runs it: in the foreground, on ``bind`` (None: as written).

    Returns the command and the endpoint the document gave to ``--bind`` (which
    later blocks use to reach this server).
    """
    line = line.strip()
    if line.endswith("&"):
        line = line[:-1].rstrip()
    match = _BIND.search(line)
    if not match:
        raise AssertionError(f"a server line without --bind: {line}")
    if bind is None:
        return line, match["endpoint"]
    command = line[:match.start()] + f"--bind {shlex.quote(bind)}" + line[match.end():]
    return command, match["endpoint"]
