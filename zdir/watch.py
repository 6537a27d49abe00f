"""Change notification for the listing cache: inotify over ctypes; file systems to trust.

Two questions decide whether a directory's listing may be kept (see cache.py):

- **Do its times change when it does?** ``MountTable`` finds a directory's file
  system type by its ``st_dev`` in ``/proc/self/mountinfo``, and ``TRUSTED_FS``
  lists the local file systems whose changes all go through this kernel, so that
  directory mtimes and inotify both see them. Everything else is not cached:
  ``proc``, ``sysfs`` and the like (times never change), ``fuse.*``, ``nfs``,
  ``cifs``/``smb3``, ``9p``, ``ceph`` (another machine or a daemon changes them
  unseen), and ``overlay`` (its layers can be changed underneath it, which neither
  its times nor inotify report). macOS and Windows have no such table here: their
  directories are trusted (the usual local disks; a network mount there may be
  stale by its own cache's rules).
- **Can the kernel tell us at once?** ``Inotify`` is a few lines over the system
  calls (``inotify_init1``, ``inotify_add_watch``, ``inotify_rm_watch``, and
  ``read`` on the descriptor) through ctypes, because the core may depend on pyzmq
  and msgpack only; the small libraries that do this (inotify_simple, asyncinotify)
  would be a third. ``Inotify.open()`` is None off Linux, without a libc that has
  the calls, or when the kernel refuses an instance: the cache then falls back to
  change stamps. ``MountChanges`` tells the same of the mount table (a mount can
  hide a directory on a path: see cache.py, "Served by path").
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import select
import struct
import sys
import threading
from typing import Dict, List, Optional, Set, Tuple

log = logging.getLogger(__name__)

ON_LINUX = sys.platform.startswith("linux")
MOUNTINFO = "/proc/self/mountinfo"

# Local file systems whose every change goes through this kernel: directory times
# change with their entries, and inotify reports each change as it is made.
TRUSTED_FS = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "f2fs", "zfs", "jfs",
    "reiserfs", "nilfs2", "bcachefs", "hfsplus",
})

# inotify(7)
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_MASK_ADD = 0x20000000
# Everything that can change what a listing with stat columns shows: names (create,
# delete, move), and an entry's size, mtime or mode (modify, close after write,
# attrib), and the directory itself going away or moving. Reads are not asked for:
# listing the directory must not count as a change to it.
CHANGES = (IN_ATTRIB | IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM
           | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_READ_BYTES = 64 * 1024  # many events per read; at least one event with a 255-byte name


class Inotify:
    """One non-blocking inotify instance: add and remove watches, read what changed.

    Not thread-safe by itself: the cache calls it under its own lock.
    """

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self.fd: Optional[int] = fd

    @classmethod
    def open(cls) -> Optional["Inotify"]:
        """A new instance, or None where inotify is not available (logged once, why)."""
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:  # EMFILE: the user's max_user_instances is used up
            log.warning("no inotify instance (%s): the cache falls back to change stamps",
                        os.strerror(ctypes.get_errno()))
            return None
        return cls(libc, fd)

    def add(self, path: bytes, mask: int) -> int:
        """Watch the directory at ``path``; its watch descriptor (the same for the same inode).

        Raises OSError: ENOSPC when the user's watches are used up, ENOMEM,
        ENOTDIR with IN_ONLYDIR, EACCES, ENOENT.
        """
        wd = self._libc.inotify_add_watch(self.fd, path, mask)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return wd

    def remove(self, wd: int) -> None:
        """Stop a watch; one already gone (its directory deleted, unmounted) is no error."""
        self._libc.inotify_rm_watch(self.fd, wd)

    def read(self) -> Tuple[Set[int], bool]:
        """Drain the queued events without blocking: the watches they name, and overflow."""
        changed: Set[int] = set()
        overflow = False
        while True:
            try:
                data = os.read(self.fd, _READ_BYTES)  # type: ignore[arg-type]
            except BlockingIOError:
                return changed, overflow
            except InterruptedError:
                continue
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                else:
                    changed.add(wd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _libc() -> Optional[ctypes.CDLL]:
    if not ON_LINUX:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library this process already uses
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError) as exc:
        log.warning("no inotify in this C library (%s): the cache falls back to change stamps",
                    exc)
        return None
    return libc


_ESCAPE = re.compile(rb"\\([0-7]{3})")


def _unescape(field: bytes) -> bytes:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    return _ESCAPE.sub(lambda match: bytes([int(match.group(1), 8)]), field)


def parse_mountinfo(text: bytes) -> List[Tuple[int, bytes, str]]:
    """``(st_dev, mount point, fs type)`` for each line of ``/proc/self/mountinfo``.

    A line is ``id parent major:minor root mountpoint options [optional...] - type
    source super-options`` (proc(5)); the optional fields end at the lone "-".
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split(b" ")
        try:
            separator = fields.index(b"-", 6)
            major, minor = fields[2].split(b":")
            dev = os.makedev(int(major), int(minor))
            fstype = fields[separator + 1].decode("ascii", "replace")
        except (ValueError, IndexError):
            continue
        mounts.append((dev, _unescape(fields[4]), fstype))
    return mounts


class MountTable:
    """File system type by device number, from ``/proc/self/mountinfo``; thread-safe.

    The table is parsed once and re-read only when the kernel says the mounts
    changed (``poll`` on the open file reports POLLPRI) or a device is missing.
    A device not in the table is looked up by the longest mount point holding the
    path: a btrfs subvolume's files carry a device number of their own.
    """

    def __init__(self, path: str = MOUNTINFO) -> None:
        self._lock = threading.Lock()
        self._types: Dict[int, str] = {}
        self._mounts: List[Tuple[int, bytes, str]] = []
        self._file = None
        self._poll: Optional[select.poll] = None
        try:
            self._file = open(path, "rb")  # noqa: SIM115 (kept open: poll says when it changed)
            self._poll = select.poll()
            self._poll.register(self._file, select.POLLPRI | select.POLLERR)
        except (OSError, AttributeError):
            self._file = None
        self._read()

    @property
    def available(self) -> bool:
        return self._file is not None

    def fs_type(self, dev: int, path: Optional[str] = None) -> Optional[str]:
        """The type of the file system with device number ``dev`` (None: cannot tell)."""
        if self._file is None:
            return None
        with self._lock:
            if self._poll is not None and self._poll.poll(0):
                self._read()
            found = self._types.get(dev)
            if found is None:
                self._read()
                found = self._types.get(dev)
            if found is None and path is not None:
                found = self._by_path(os.fsencode(path))
            return found

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read(self) -> None:
        if self._file is None:
            return
        try:
            self._file.seek(0)
            text = self._file.read()
        except OSError:
            return
        self._mounts = parse_mountinfo(text)
        self._types = {dev: fstype for dev, _, fstype in self._mounts}

    def _by_path(self, path: bytes) -> Optional[str]:
        best, found = -1, None
        for _, point, fstype in self._mounts:  # later lines are mounted on top: >= keeps them
            inside = path == point or path.startswith(point.rstrip(b"/") + b"/")
            if inside and len(point) >= best:
                best, found = len(point), fstype
        return found


def directories_above(path: str) -> List[str]:
    """Every directory above an absolute PATH, from the top down: what a lookup by
    that path goes through."""
    found = []
    parent = os.path.dirname(path)
    while not found or found[-1] != parent:
        found.append(parent)
        parent = os.path.dirname(parent)
    return found[::-1]


class MountChanges:
    """Whether the mount table changed since last asked: ``/proc/self/mountinfo`` polls
    ``POLLPRI`` until it is read again. Where that cannot be had, it always did."""

    def __init__(self) -> None:
        self._poll: Optional[select.poll] = None
        self._file = None
        try:
            self._file = open(MOUNTINFO, "rb")  # noqa: SIM115 (kept open to be polled)
        except OSError:
            return
        try:
            self._file.read()
            self._poll = select.poll()
            self._poll.register(self._file, select.POLLPRI | select.POLLERR)
        except (OSError, AttributeError):
            self.close()

    def changed(self) -> bool:
        if self._poll is None:
            return True
        if not self._poll.poll(0):
            return False
        try:
            self._file.seek(0)  # type: ignore[union-attr]
            self._file.read()  # type: ignore[union-attr]  # asked again from here
        except OSError:
            self.close()
        return True

    def close(self) -> None:
        self._poll = None
        if self._file is not None:
            self._file.close()
            self._file = None


def trusted(mounts: Optional[MountTable], dev: int, path: Optional[str] = None) -> bool:
    """Whether a directory's times and notifications can be believed (see the module doc)."""
    if not ON_LINUX:
        return True
    if mounts is None:
        return False
    return mounts.fs_type(dev, path) in TRUSTED_FS


def watch_errno_is_a_limit(exc: OSError) -> bool:
    """Out of watches or memory: the cache stops keeping, quietly."""
    return exc.errno in (errno.ENOSPC, errno.ENOMEM)
