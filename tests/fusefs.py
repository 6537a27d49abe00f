"""A tiny FUSE file system that misbehaves on purpose: hung directories and endless trees.

Run as ``python tests/fusefs.py MOUNTPOINT --mode hang|stat-hang|cycle`` (the daemon,
in the foreground), or use the ``fusefs`` fixture, which mounts one under a test's
``tmp_path``, waits until the kernel has it, and on teardown releases blocked calls,
unmounts lazily and stops the daemon by pid. A hung disk cannot be made from an
ordinary directory, and a real dead NFS server is not available in a test; FUSE
lets a process we control decide when (or whether) ``readdir`` and ``stat`` answer.

Modes (every one has ``a/``, ``b.txt``, ``ok/``, ``zz.txt``, and ``hang/`` and
``hang-01/`` to ``hang-11/`` at its top):

- ``hang``: ``readdir`` of ``hang/`` (and of each ``hang-NN/``) blocks until released.
  The kernel lets one reader of a FUSE directory in at a time: a second walk of the
  same directory waits in the kernel, where the daemon does not see it, so tests that
  count stuck walks give each its own directory.
- ``stat-hang``: the top's ``readdir`` names them, but a ``stat`` of one (or of
  anything below it) blocks until released: walking into it, or listing it, hangs.
- ``cycle``: ``loop/`` holds ``again/``, ``loop/`` (the same directory again, forever)
  and a few files: every ``readdir`` answers at once, but a recursive walk never ends.

The daemon reads commands on stdin, one a line: ``release`` (blocked calls return
``EIO``, and later ones too), ``count`` (prints one JSON line: readdir calls in all
and per path of the top two levels, calls blocked now). End of input releases too,
so a test process that dies cannot leave a call blocked for ever. It prints
``mounted`` once the kernel has sent its first request (INIT).
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

MODES = ("hang", "stat-hang", "cycle")
MOUNT_TIMEOUT = 10.0  # seconds for the daemon to say "mounted"
STOP_TIMEOUT = 5.0  # seconds for each step of the teardown
CYCLE_FILES = 12  # files in every directory of the cycle, besides its two sub-directories
HUNG = ("hang", *(f"hang-{i:02d}" for i in range(1, 12)))  # top-level directories that hang
TOP_FILES = {"/a": ("1", "2", "3"), "/ok": ("x", "y")}


# -- the daemon -------------------------------------------------------------------------------

def _operations(mode: str):
    """The FUSE operations for ``mode`` (imported here: the fixture must not need mfusepy)."""
    import mfusepy

    directory = {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
    regular = {"st_mode": stat.S_IFREG | 0o644, "st_nlink": 1, "st_size": 1}

    class Faulty(mfusepy.Operations):
        use_ns = True

        def __init__(self) -> None:
            self.released = threading.Event()
            self.lock = threading.Lock()
            self.readdirs = 0
            self.paths: Dict[str, int] = collections.Counter()
            self.blocked = 0

        def init(self, path: str) -> None:
            print("mounted", flush=True)

        def _block(self) -> None:
            """Wait for ``release``; the call then fails as a dead disk's would."""
            with self.lock:
                self.blocked += 1
            try:
                self.released.wait()
            finally:
                with self.lock:
                    self.blocked -= 1
            raise mfusepy.FuseOSError(errno.EIO)

        def _stuck(self, path: str) -> bool:
            return path.split("/", 2)[1] in HUNG

        def getattr(self, path: str, fh: Optional[int] = None) -> dict:
            if mode == "stat-hang" and self._stuck(path):
                self._block()
            if path in ("/", "/a", "/ok") or path[1:] in HUNG:
                return directory
            if path in ("/b.txt", "/zz.txt") or os.path.dirname(path) in TOP_FILES:
                return regular
            if mode == "cycle" and (path == "/loop" or path.startswith("/loop/")):
                leaf = os.path.basename(path)
                return directory if leaf in ("again", "loop") else regular
            if self._stuck(path):
                return regular
            raise mfusepy.FuseOSError(errno.ENOENT)

        def readdir(self, path: str, fh: int) -> Iterator:
            with self.lock:
                self.readdirs += 1
                if path.count("/") <= 2:
                    self.paths[path] += 1
            if mode == "hang" and self._stuck(path):
                self._block()
            d, f = directory["st_mode"], regular["st_mode"]
            rows: List = [(".", d, 0), ("..", d, 0)]
            if path == "/":
                rows += [("a", d, 0), ("b.txt", f, 0), ("ok", d, 0), ("zz.txt", f, 0)]
                rows += [(name, d, 0) for name in HUNG]
                if mode == "cycle":
                    rows.append(("loop", d, 0))
            elif path in TOP_FILES:
                rows += [(name, f, 0) for name in TOP_FILES[path]]
            elif self._stuck(path):
                rows += [("x", f, 0), ("y", f, 0)]
            elif mode == "cycle" and path.startswith("/loop"):
                rows += [("again", d, 0), ("loop", d, 0)]
                rows += [(f"f{i:02d}", f, 0) for i in range(CYCLE_FILES)]
            return rows

        def counts(self) -> dict:
            with self.lock:
                return {"readdir": self.readdirs, "paths": dict(self.paths),
                        "blocked": self.blocked}

    return Faulty()


def _serve_commands(ops) -> None:
    """Read ``release`` / ``count`` lines from stdin; end of input releases."""
    for line in sys.stdin:
        command = line.strip()
        if command == "release":
            ops.released.set()
        elif command == "count":
            print(json.dumps(ops.counts()), flush=True)
    ops.released.set()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mountpoint")
    parser.add_argument("--mode", choices=MODES, required=True)
    args = parser.parse_args(argv)
    import mfusepy

    ops = _operations(args.mode)
    threading.Thread(target=_serve_commands, args=(ops,), daemon=True).start()
    # Multi-threaded, so that one blocked call does not hold up the others; no kernel
    # caching of attributes or entries, so every stat reaches us.
    mfusepy.FUSE(ops, args.mountpoint, foreground=True, nothreads=False, ro=True,
                 attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="zdirtest")
    return 0


# -- the fixture ------------------------------------------------------------------------------

def fuse_missing() -> Optional[str]:
    """Why no FUSE test file system can be mounted here, or None if one can."""
    if not sys.platform.startswith("linux"):
        return "the FUSE test file system is Linux only"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (FUSE is not available; .ci/run installs fuse3 when root)"
    if _fusermount() is None:
        return "neither fusermount3 nor fusermount is installed (Debian: fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: the binding found no libfuse
        return f"the mfusepy binding cannot be loaded ({exc}): pip install -e '.[test]'"
    return None


def _fusermount() -> Optional[str]:
    return shutil.which("fusermount3") or shutil.which("fusermount")


class FuseFS:
    """One mounted test file system: its daemon, its mount point and its control line."""

    def __init__(self, mountpoint: Path, mode: str, log_path: Path) -> None:
        self.path = mountpoint
        self.mode = mode
        mountpoint.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(mountpoint), "--mode", mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
        )
        self.log_path = log_path
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._asking = threading.Lock()  # one command and its answer at a time
        threading.Thread(target=self._read_stdout, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        for raw in self.proc.stdout:  # type: ignore[union-attr]
            self._lines.put(raw.decode("utf-8", "replace").strip())
        self._lines.put(None)

    def _line(self, timeout: float) -> Optional[str]:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_mounted(self) -> "FuseFS":
        line = self._line(MOUNT_TIMEOUT)
        if line != "mounted":
            self.stop()
            raise AssertionError(f"the FUSE daemon did not mount {self.path} "
                                 f"(said {line!r}): {self.log_path.read_text(errors='replace')}")
        return self

    def _command(self, command: str) -> None:
        try:
            self.proc.stdin.write(command.encode() + b"\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):
            pass  # the daemon is gone, or its stdin closed already

    def counts(self) -> dict:
        """The daemon's counters: ``readdir`` calls, per ``paths`` (top levels), ``blocked``."""
        with self._asking:
            self._command("count")
            line = self._line(STOP_TIMEOUT)
        if not line:
            raise AssertionError(f"the FUSE daemon did not answer 'count': "
                                 f"{self.log_path.read_text(errors='replace')}")
        return json.loads(line)

    def wait_blocked(self, at_least: int = 1, timeout: float = 10.0) -> int:
        """Wait until ``at_least`` calls are blocked in the daemon; how many are."""
        ends = time.monotonic() + timeout
        while True:
            blocked = self.counts()["blocked"]
            if blocked >= at_least or time.monotonic() >= ends:
                return blocked
            time.sleep(0.05)

    def release(self) -> None:
        self._command("release")

    def stop(self) -> None:
        """Release blocked calls, unmount (lazily) and stop the daemon by pid, bounded."""
        self.release()
        fusermount = _fusermount()
        if fusermount is not None:
            subprocess.run([fusermount, "-u", "-z", str(self.path)], capture_output=True,
                           timeout=STOP_TIMEOUT, check=False)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self._log.close()


@pytest.fixture
def fusefs(tmp_path: Path, cluster):
    """Mount a misbehaving FUSE file system: ``fusefs(mountpoint, mode)`` -> ``FuseFS``.

    It depends on ``cluster`` so that it is torn down first: a server thread blocked in
    a FUSE call cannot be killed (not even by SIGKILL) until the call is answered.
    """
    reason = fuse_missing()
    if reason is not None:
        pytest.skip(reason)
    mounted: List[FuseFS] = []

    def mount(mountpoint: Path, mode: str) -> FuseFS:
        fs = FuseFS(mountpoint, mode, tmp_path / f"fusefs-{len(mounted)}.log")
        mounted.append(fs)
        return fs.wait_mounted()

    try:
        yield mount
    finally:
        for fs in reversed(mounted):
            fs.stop()


if __name__ == "__main__":
    raise SystemExit(main())
