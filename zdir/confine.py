"""Confinement to a root: a client's path checked as text, resolved by hand, opened safely.

Pure file-system code, shared by the lister. ``split_path`` checks a path as text
(nothing is decoded: ``%2e%2e`` is a name); ``resolve`` expands every symlink on the
way by hand and refuses to leave the root; ``open_confined`` opens the result one
component at a time with ``O_NOFOLLOW`` directory descriptors where the platform has
them, so a directory swapped for a symlink after the check is refused, never
followed. Refusals are ``ListingError``s carrying a protocol code.
"""

from __future__ import annotations

import errno
import ntpath
import os
import stat as stat_module
import sys
from typing import List, Sequence, Union

from .errors import ListingError
from .protocol import MAX_PATH_BYTES, ErrorCode

MAX_SYMLINK_HOPS = 40

ON_WINDOWS = os.name == "nt"
# Directory file descriptors let us open each step relative to the last with
# O_NOFOLLOW, closing the window between checking a path and listing it.
USE_DIR_FD = (
    os.open in os.supports_dir_fd
    and os.scandir in os.supports_fd
    and hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
)
OPEN_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)

NOFOLLOW_ERRNOS = {errno.ELOOP} | ({errno.EMLINK} if sys.platform.startswith("freebsd") else set())

PathArg = Union[str, bytes]


def refuse(code: ErrorCode, message: str) -> ListingError:
    return ListingError(message, code=code)


def split_path(path: PathArg) -> List[str]:
    """Check a client path as text and return its components, '.' and '..' folded.

    Nothing is decoded: '%2e%2e' is a literal name, not '..'. On POSIX, bytes that
    are not UTF-8 are a literal name too (such names are listed, so may be asked for).
    """
    try:
        raw = path if isinstance(path, bytes) else os.fsencode(path)
    except UnicodeEncodeError:  # a lone surrogate that surrogateescape did not make
        raise refuse(ErrorCode.BAD_PATH, "path holds a character no file name can") from None
    if len(raw) > MAX_PATH_BYTES:
        raise refuse(ErrorCode.BAD_PATH, f"path is longer than {MAX_PATH_BYTES} bytes")
    if isinstance(path, bytes):
        try:
            path = os.fsdecode(path) if not ON_WINDOWS else path.decode("utf-8")
        except UnicodeDecodeError:
            raise refuse(ErrorCode.BAD_PATH, "path is not valid UTF-8") from None
    if "\x00" in path:
        raise refuse(ErrorCode.BAD_PATH, "path contains a NUL byte")
    if path.startswith(("/", "\\")) or (":" in path and ntpath.splitdrive(path)[0]):
        raise refuse(
            ErrorCode.BAD_PATH, "absolute paths are refused: PATH is relative to each root"
        )
    separators = "/\\" if ON_WINDOWS else "/"
    for separator in separators[1:]:
        path = path.replace(separator, "/")
    parts: List[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise refuse(ErrorCode.BAD_PATH, "'..' climbs out of the root")
            parts.pop()
            continue
        if ON_WINDOWS and ":" in part:
            raise refuse(ErrorCode.BAD_PATH, "':' is not allowed in a path on this server")
        parts.append(part)
    return parts


def inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


def resolve(root: str, parts: Sequence[str]) -> List[str]:
    """Expand every symlink on the way, by hand, and refuse to step outside ``root``.

    ``root`` must already be a real (symlink-free, absolute) path. Returns the
    components of the target relative to the root, none of them a symlink.
    """
    todo = list(reversed(parts))
    done: List[str] = []
    hops = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise refuse(ErrorCode.OUTSIDE_ROOT, "a symlink on the path leads out of the root")
            done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        info = lstat_refusing(candidate)
        if not stat_module.S_ISLNK(info.st_mode):
            if todo and not stat_module.S_ISDIR(info.st_mode):
                raise refuse(ErrorCode.NOT_A_DIRECTORY, f"'{part}' is not a directory")
            done.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise refuse(ErrorCode.SYMLINK_LOOP, "too many levels of symbolic links")
        try:
            target = os.readlink(candidate)
        except OSError as exc:  # replaced by a non-link, or removed, since the lstat
            raise swapped(exc, part) from None
        if os.path.isabs(target) or ntpath.splitdrive(target)[0]:
            target = os.path.normpath(target)
            if not inside(target, root):
                raise refuse(ErrorCode.OUTSIDE_ROOT, "a symlink on the path leads out of the root")
            done = []
            target = os.path.relpath(target, root)
        todo.extend(reversed(target.replace("\\", "/").split("/")))
    return done


def refusal(exc: OSError, name: str = "") -> ListingError:
    """The protocol's word for an OSError met while resolving or opening the path."""
    where = f"'{name}': " if name else ""
    if isinstance(exc, FileNotFoundError):
        return refuse(ErrorCode.NOT_FOUND, f"{where}no such file or directory")
    if isinstance(exc, NotADirectoryError):
        return refuse(ErrorCode.NOT_A_DIRECTORY, f"{where}not a directory")
    if isinstance(exc, PermissionError):
        return refuse(ErrorCode.PERMISSION_DENIED, f"{where}permission denied")
    return refuse(ErrorCode.BAD_PATH, f"{where}{exc.strerror or exc}")


def swapped(exc: OSError, name: str = "") -> ListingError:
    """A component changed between two looks at it (EINVAL from readlink, and the like).

    Someone is swapping the path while we resolve it: we cannot vouch for where it
    leads, so it is refused as ``outside_root`` (or ``not_found`` if it is gone),
    never reported as the server's own failure.
    """
    if isinstance(exc, FileNotFoundError):
        return refusal(exc, name)
    where = f"'{name}' " if name else "the path "
    return refuse(ErrorCode.OUTSIDE_ROOT, f"{where}changed while it was being resolved")


def lstat_refusing(path: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as exc:
        raise refusal(exc) from None


def open_confined(root: str, parts: Sequence[str]) -> int:
    """Open the resolved directory step by step; a symlink appearing on the way is refused."""
    try:
        fd = os.open(root, OPEN_DIR_FLAGS)
    except OSError as exc:
        raise refusal(exc, "the root") from None
    try:
        for part in parts:
            next_fd = open_step(part, fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_step(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, OPEN_DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        # O_NOFOLLOW refused a symlink: ELOOP (EMLINK on FreeBSD), or ENOTDIR on Linux
        # with O_DIRECTORY, which a plain file gives too: look again to tell them apart.
        if exc.errno not in NOFOLLOW_ERRNOS and exc.errno != errno.ENOTDIR:
            raise refusal(exc, name) from None
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError as again:
            raise swapped(again, name) from None
        changed = stat_module.S_ISLNK(mode) or stat_module.S_ISDIR(mode)
        if exc.errno == errno.ENOTDIR and not changed:  # a file: not_a_directory
            raise refusal(exc, name) from None
        # A symlink now, or a directory again after being one: swapped while being opened.
        raise refuse(
            ErrorCode.OUTSIDE_ROOT, f"'{name}' changed into a symlink while being opened"
        ) from exc
