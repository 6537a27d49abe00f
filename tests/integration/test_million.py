"""A cold listing of 1,000,000 entries through B, A and the client, with default flags.

Issue 9, item 6: it ends with exit 0 and every entry, and A and B each stay at or
below 100 MiB peak RSS (B sorts the directory in packed runs, A relays the reply
without decoding it). The directory is built in /dev/shm when it can hold it (a
tmpfs: seconds, where a disk takes a minute and a half), and removed afterwards.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from conftest import make_tree, proc_status, run_client

ENTRIES = 1_000_000
PEAK_RSS_MIB = 100
ROOM_BYTES = 1 << 30  # what a tmpfs spends on a million empty files is kernel memory: be safe
SHM = "/dev/shm"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def has_room(path: str) -> bool:
    """Whether the file system at ``path`` can take a million more empty files."""
    try:
        vfs = os.statvfs(path)
    except (OSError, AttributeError):  # no statvfs on Windows: try, and clean up if it fails
        return os.path.isdir(path)
    inodes_ok = vfs.f_files == 0 or vfs.f_favail > ENTRIES + 10_000  # 0: no fixed inode table
    return inodes_ok and vfs.f_bavail * vfs.f_frsize >= ROOM_BYTES and os.access(path, os.W_OK)


def fill(directory: Path, count: int) -> None:
    """``count`` empty files, fast: one mknod each where the platform allows it."""
    fd = os.open(directory, os.O_RDONLY) if os.open in os.supports_dir_fd else None
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    use_mknod = hasattr(os, "mknod") and fd is not None
    try:
        for index in range(count):
            name = f"file-{index:07d}"
            if use_mknod:
                try:
                    os.mknod(name, stat.S_IFREG | 0o644, dir_fd=fd)
                    continue
                except PermissionError:  # some systems keep mknod for root
                    use_mknod = False
            if fd is not None:
                os.close(os.open(name, flags, 0o644, dir_fd=fd))
            else:
                os.close(os.open(directory / name, flags, 0o644))
    finally:
        if fd is not None:
            os.close(fd)


def empty_and_remove(directory: Path) -> None:
    """Unlink every file, then the directory (rmtree would stat each one first)."""
    if not directory.exists():
        return
    with os.scandir(directory) as scan:
        for entry in scan:
            os.unlink(entry.path)
    directory.rmdir()


def peak_rss_mib(pid: int) -> Optional[float]:
    """VmHWM, the peak resident memory of a live process, from /proc (Linux only)."""
    try:
        return proc_status(pid, "VmHWM") / 1024
    except (OSError, AssertionError):
        return None


@pytest.fixture
def million(tmp_path: Path):
    base = Path(SHM) if has_room(SHM) else tmp_path
    if not has_room(str(base)):
        pytest.skip(f"neither {SHM} nor {tmp_path} can hold {ENTRIES:,} files")
    directory = Path(os.path.join(base, f"zdir-million-{os.getpid()}-{time.monotonic_ns()}"))
    directory.mkdir()
    try:
        fill(directory, ENTRIES)
        yield directory
    finally:
        empty_and_remove(directory)


def test_a_million_entries_through_a_and_b_with_defaults(million, cluster, tmp_path):
    a, b = cluster.chain(make_tree(tmp_path / "a", {}), million)
    started = time.monotonic()
    proc = run_client("--server", a.endpoint, timeout=120)
    elapsed = time.monotonic() - started
    peaks = {"A": peak_rss_mib(a.pid), "B": peak_rss_mib(b.pid)}  # read before they stop
    assert proc.returncode == 0, proc.stderr_text[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == ENTRIES, (len(lines), proc.stderr_text[-2000:])
    assert lines[0] == b"file-0000000" and lines[-1] == f"file-{ENTRIES - 1:07d}".encode()
    print(f"{ENTRIES:,} entries in {elapsed:.1f}s; peak RSS {peaks}")
    if sys.platform.startswith("linux"):
        for name, peak in peaks.items():
            assert peak is not None, f"no VmHWM for {name}"
            assert peak <= PEAK_RSS_MIB, f"{name} peaked at {peak:.1f} MiB: {peaks}"
