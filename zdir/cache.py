"""Encoded listings kept between requests, served only while the cache can vouch for them.

``ListingCache.frames(listing, encode)`` is the workers' entry point: it yields a
listing's encoded chunk frames, from memory when a kept copy is still exact, or
by listing (keeping a copy when it may). Worker threads share one cache.
``ListingCache.lookup(parts, options)`` is the node loop's: an exact listing found
by its path with no file-system call at all (see "Served by path" below), so a
listing nothing changed is answered without a worker.

What a cached answer may hold, by platform:

- **Linux with inotify (exact).** A listing is kept with a watch on its directory
  (``watch.CHANGES``: create, delete, move, modify, close-after-write, attrib,
  and the directory deleted or moved). The watch is added *before* the directory
  is read, and every request drains the queued events before it looks in the
  cache, so a change made before a request always shows in its answer: names,
  types, sizes, mtimes and modes are what a fresh listing would give. A listing
  with stat columns also watches each sub-directory it shows (whose own mtime and
  size change with its entries, unseen by the parent's watch), each checked
  against the listed values after its watch is in place. Not kept: a listing
  during which an event arrived, one with a file whose inode has other hard links
  or lives on another device (changes through another path notify other
  directories), a listing over ``max_bytes`` or needing more than ``max_watches``
  watches. A queue overflow drops the whole cache; running out of watches
  (ENOSPC) or kernel memory means not keeping, never an error. Watches go with
  the listings that hold them. Not seen, as by any inotify user: writes through a
  shared ``mmap`` (the kernel updates the mtime without an event).
- **Elsewhere (macOS, Windows; Linux without inotify): change stamps.** A listing
  is served while the directory's ``(st_dev, st_ino, st_mtime_ns, st_ctime_ns)``
  is unchanged. Names and types are current: adding, removing or renaming an
  entry changes its directory's times, and a listing is kept only if the
  directory had not changed for ``SETTLE`` seconds when it began (a change in the
  same clock tick would leave the stamp as it was). Sizes, mtimes and modes may be
  up to ``stat_ttl`` seconds old (writes and chmod do not touch the directory);
  ``stat_ttl`` 0 keeps no listing with stat columns.
- **Served by path (Linux with inotify).** Finding a kept listing by its
  directory's device and inode needs the directory opened, a file-system call a
  hung file system can stall. So a listing asked for by a path with no symlink on
  the way is also indexed by that path, once a watch is in place on every
  directory from ``/`` down to its parent and the path was checked to still lead
  to the listed directory. Any event on those directories (a component renamed,
  replaced or chmod-ed) or a change of the mount table (``/proc/self/mountinfo``
  polls ``POLLPRI``) drops the index entry; the kept listing goes by its own
  watches as above. The lookup takes the cache's lock only if it is free: a
  worker holding it sends the request the usual way.
- **Never cached**: recursive listings (a change deep in a tree reaches no watch
  or stamp of the top; a watch per directory would cost a watch per directory
  walked); truncated or partial listings; and, on Linux, directories on file
  systems not in ``watch.TRUSTED_FS`` (procfs, sysfs, FUSE, NFS, CIFS, 9p,
  overlay: their times or events miss changes) or whose type cannot be told.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import threading
import time
from typing import (
    Callable, Dict, Hashable, Iterator, List, NamedTuple, Optional, OrderedDict,
    Sequence, Set, Tuple,
)

from . import watch
from .lister import DirListing, Options
from .chunkframes import Chunk, name_from_wire


log = logging.getLogger(__name__)

SETTLE = 2.0  # seconds a directory must have been unchanged before its listing is kept (stamps)
DEFAULT_MAX_WATCHES = 8192  # inotify watches the cache may hold (the kernel's old default limit)

Stamp = Tuple[int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_ctime_ns
Encode = Callable[[Chunk], bytes]
Parts = Tuple[str, ...]  # a client's path as ``split_path`` gives it


class Cached(NamedTuple):
    """One kept listing: its chunk frames and what the source status reports."""

    chunks: Tuple[bytes, ...]
    entries: int
    stamp: Stamp
    expires: Optional[float]  # time.monotonic() after which it is not served; None: never
    size: int  # bytes held
    watches: Tuple[int, ...] = ()  # inotify watch descriptors it relies on


class _Plan:
    """A listing under way that may be kept: what it relies on, and what it has seen."""

    def __init__(self, key: Hashable, stamp: Stamp, with_stat: bool) -> None:
        self.key = key
        self.stamp = stamp
        self.with_stat = with_stat
        self.began = time.time()
        self.watches: List[int] = []
        self.seen: Dict[int, int] = {}  # watch -> its change count when it was added
        self.epoch = 0
        self.dir_fd: Optional[int] = None  # a copy of the listing's descriptor, for sub-watches
        self.subdirs: List[Tuple[object, object, object, object]] = []  # name, size, mtime, mode

    def note_subdirs(self, chunk: Chunk) -> None:
        """Remember the sub-directories a chunk shows, with the values it shows for them."""
        types = chunk.types
        index = types.find("d")
        while index >= 0:
            self.subdirs.append((chunk.names[index], chunk.sizes[index],  # type: ignore[index]
                                 chunk.mtimes[index], chunk.modes[index]))  # type: ignore[index]
            index = types.find("d", index + 1)


class ListingCache:
    """Least recently used listings within a byte and a watch budget; shared by threads."""

    def __init__(self, max_bytes: int, stat_ttl: float, *,
                 max_watches: int = DEFAULT_MAX_WATCHES, notify: bool = True) -> None:
        self.max_bytes = max_bytes
        self.stat_ttl = stat_ttl
        self.max_watches = max_watches
        self.bytes = 0
        self._items: OrderedDict[Hashable, Cached] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._inotify = watch.Inotify.open() if notify and max_bytes > 0 else None
        self._queued = select.poll()  # whether the inotify instance has events to read
        if self._inotify is not None:
            self._queued.register(self._inotify.fd, select.POLLIN)  # type: ignore[arg-type]
        self._mounts = watch.MountTable() if watch.ON_LINUX and max_bytes > 0 else None
        self._refs: Dict[int, int] = {}  # watch -> kept listings and plans holding it
        self._users: Dict[int, Set[Hashable]] = {}  # watch -> keys of kept listings on it
        self._changes: Dict[int, int] = {}  # watch -> events seen for it
        self._epoch = 0  # bumped when the event queue overflowed
        self._out_of_watches = False
        # Kept listings by path: (parts, shape) -> (key, watches of the directories above).
        self._paths: Dict[Hashable, Tuple[Hashable, Tuple[int, ...]]] = {}
        self._path_users: Dict[int, Set[Hashable]] = {}  # watch -> path entries relying on it
        self._mountinfo = watch.MountChanges() if self._inotify is not None else None

    @property
    def exact(self) -> bool:
        """True when kept listings are vouched for by inotify, False under stamp rules."""
        return self._inotify is not None

    @property
    def watches(self) -> int:
        """Watches held now (by kept listings and listings under way)."""
        return len(self._refs)

    def frames(self, listing: DirListing, encode: Encode,
               parts: Optional[Parts] = None) -> Iterator[bytes]:
        """The listing's encoded chunk frames: kept ones if still exact, else listed afresh.

        From memory, ``listing.entries`` is set to the kept count and the listing is
        closed unread. Otherwise the listing is iterated (which sets ``entries``,
        ``truncated`` and ``warning`` as usual) and a copy kept when it may be.
        ``parts``: the path the listing was asked by, to index a kept copy under it.
        """
        plan: Optional[_Plan] = None
        try:
            stamp = self._stamp(listing)
            if stamp is not None:
                key = self._key(listing.options, stamp)
                kept = self._get(key, stamp)
                if kept is not None:
                    self._index_path(parts, key, listing)
                    listing.close()
                    listing.entries = kept.entries
                    yield from kept.chunks
                    return
                plan = self._plan(key, stamp, listing)
            kept_frames: List[bytes] = []
            size = 0
            for chunk in listing:
                frame = encode(chunk)
                if plan is not None:
                    size += len(frame)
                    if size > self.max_bytes:
                        self._release(plan)
                        plan, kept_frames = None, []
                    else:
                        kept_frames.append(frame)
                        if plan.with_stat and plan.watches:
                            plan.note_subdirs(chunk)
                yield frame
            if plan is not None:
                self._keep(plan, listing, kept_frames, size)
                plan = None
                self._index_path(parts, key, listing)
        finally:
            if plan is not None:
                self._release(plan)
            listing.close()

    def close(self) -> None:
        """Drop everything and release the watches and the inotify descriptor."""
        with self._lock:
            self._clear()
            if self._mountinfo is not None:
                self._mountinfo.close()
            if self._inotify is not None:
                self._inotify.close()
                self._inotify = None
        if self._mounts is not None:
            self._mounts.close()

    def lookup(self, parts: Parts, options: Options) -> Optional[Cached]:
        """The exact listing kept for PATH (as ``split_path`` parts), found with no
        file-system call: for the node's loop, which must never wait on one.

        None when there is none, under stamp rules, or when a worker holds the lock
        (it may be in a file-system call): the request then goes to a worker.
        """
        if options.recursive or options.after or self._inotify is None:
            return None  # never kept (see frames), so never found
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._drain()  # a change made before the request shows in its answer
            if self._mountinfo is None or self._mountinfo.changed():
                self._drop_paths(list(self._paths))  # a mount may hide a directory on a path
            entry = (parts, *self._shape(options))
            found = self._paths.get(entry)
            if found is None:
                return None
            cached = self._items.get(found[0])
            if cached is None:  # the listing was dropped: so is its path
                self._drop_paths([entry])
                return None
            self._items.move_to_end(found[0])
            return cached
        finally:
            self._lock.release()

    # -- stamp rules ------------------------------------------------------------------------------

    def worth_keeping(self, stamp: Stamp, with_stat: bool, began: float) -> bool:
        """Whether a listing that began at ``began`` (``time.time()``) may be kept (stamps)."""
        if self.max_bytes <= 0 or (with_stat and self.stat_ttl <= 0):
            return False
        settled_ns = (began - SETTLE) * 1e9
        return stamp[2] <= settled_ns and stamp[3] <= settled_ns

    # -- inside ---------------------------------------------------------------------------------

    def _stamp(self, listing: DirListing) -> Optional[Stamp]:
        """The directory's stamp when its listing may come from or go to the cache at all."""
        if listing.options.recursive or self.max_bytes <= 0:
            return None
        try:
            return listing.stamp()
        except OSError:  # listed by path, and gone already: the listing will say so
            return None

    @staticmethod
    def _shape(options: Options) -> tuple:
        """The options that shape a kept listing's frames."""
        return (options.all, options.stat, options.glob, options.exclude,
                options.chunk_entries, options.max_entries, options.targets)

    def _key(self, options: Options, stamp: Stamp) -> Hashable:
        """One directory (by device and inode), listed with the same options."""
        return ("frames", stamp[0], stamp[1], *self._shape(options))

    def _get(self, key: Hashable, stamp: Stamp) -> Optional[Cached]:
        with self._lock:
            self._drain()
            cached = self._items.get(key)
            if cached is None:
                return None
            if cached.stamp != stamp or (
                cached.expires is not None and time.monotonic() >= cached.expires
            ):
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return cached

    def _plan(self, key: Hashable, stamp: Stamp, listing: DirListing) -> Optional[_Plan]:
        """Whether this listing may be kept, and if so its watch, added before it is read."""
        options = listing.options
        if not watch.trusted(self._mounts, stamp[0], listing.path):
            return None
        if self._inotify is None:
            if options.stat and self.stat_ttl <= 0:
                return None
            return _Plan(key, stamp, options.stat)
        fd = listing.fileno()
        if fd is None:  # listed by path: no way to watch exactly the directory opened
            return None
        plan = _Plan(key, stamp, options.stat)
        plan.dir_fd = os.dup(fd)
        with self._lock:
            plan.epoch = self._epoch
            if not self._watch(plan, b"/proc/self/fd/%d" % plan.dir_fd, watch.IN_ONLYDIR):
                self._release_locked(plan)
                return None
        plan.stamp = listing.stamp()  # as of a moment the watch was in place
        return plan

    def _keep(self, plan: _Plan, listing: DirListing, frames: List[bytes], size: int) -> None:
        if listing.truncated or listing.warning is not None:
            self._release(plan)
            return
        if self._inotify is None:
            self._keep_by_stamp(plan, listing, frames, size)
            return
        if plan.with_stat and listing.shared_inodes:
            self._release(plan)
            return
        with self._lock:
            if plan.with_stat and not self._watch_subdirs(plan):
                self._release_locked(plan)
                return
            self._drain()
            if plan.epoch != self._epoch or any(
                self._changes.get(wd, 0) != count for wd, count in plan.seen.items()
            ):
                self._release_locked(plan)  # something changed while it was being listed
                return
            self._close_dir_fd(plan)
            cached = Cached(tuple(frames), listing.entries, plan.stamp, None, size,
                            tuple(plan.watches))
            plan.watches = []  # now held by the kept listing
            self._insert(plan.key, cached)

    def _keep_by_stamp(self, plan: _Plan, listing: DirListing, frames: List[bytes],
                       size: int) -> None:
        if not self.worth_keeping(plan.stamp, plan.with_stat, plan.began):
            return
        expires = time.monotonic() + self.stat_ttl if plan.with_stat else None
        with self._lock:
            self._insert(plan.key, Cached(tuple(frames), listing.entries, plan.stamp, expires,
                                          size))

    def _index_path(self, parts: Optional[Parts], key: Hashable, listing: DirListing) -> None:
        """Index a kept listing under the path it was asked by (see "Served by path").

        Only a path with no symlink on the way: the directories it goes through are
        then those above the listed one, each watched before the path is checked.
        """
        if parts is None or self._inotify is None or \
                os.path.join(listing.root, *parts) != listing.path:  # a symlink was followed
            return
        entry = (parts, *self._shape(listing.options))
        with self._lock:
            if key not in self._items or self._paths.get(entry, (None,))[0] == key:
                return
            self._drop_paths([entry] if entry in self._paths else [])
            plan = _Plan(entry, (0, 0, 0, 0), False)
            plan.epoch = self._epoch
            if all(self._watch(plan, os.fsencode(directory), _ABOVE_FLAGS, _ABOVE)
                   for directory in watch.directories_above(listing.path)):
                try:
                    info = os.stat(listing.path, follow_symlinks=False)
                except OSError:
                    info = None
                self._drain()
                if info is not None and ("frames", info.st_dev, info.st_ino) == key[:3] \
                        and key in self._items and plan.epoch == self._epoch and all(
                            self._changes.get(wd, 0) == n for wd, n in plan.seen.items()):
                    self._paths[entry] = (key, tuple(plan.watches))
                    for wd in plan.watches:
                        self._path_users.setdefault(wd, set()).add(entry)
                    return
            self._release_locked(plan)

    def _drop_paths(self, entries: Sequence[Hashable]) -> None:
        """Forget path index entries (under the lock) and the watches they held."""
        for entry in entries:
            _, watches = self._paths.pop(entry)
            for wd in watches:
                users = self._path_users.get(wd)
                if users is not None:
                    users.discard(entry)
            self._unref(watches)

    def _watch_subdirs(self, plan: _Plan) -> bool:
        """Watch each sub-directory shown, then check it still shows what was listed."""
        if len(plan.subdirs) + 1 > self.max_watches:
            return False
        self._make_room(0, len(plan.subdirs))
        base = b"/proc/self/fd/%d/" % plan.dir_fd
        for name, size, mtime, mode in plan.subdirs:
            raw = os.fsencode(name_from_wire(name))  # type: ignore[arg-type]
            if not self._watch(plan, base + raw, watch.IN_ONLYDIR | watch.IN_DONT_FOLLOW):
                return False
            try:
                info = os.stat(raw, dir_fd=plan.dir_fd, follow_symlinks=False)
            except OSError:
                return False
            if (info.st_size, info.st_mtime, info.st_mode) != (size, mtime, mode):
                return False
        return True

    def _watch(self, plan: _Plan, path: bytes, flags: int, events: int = watch.CHANGES) -> bool:
        """Add a watch the plan holds (under the lock); False when it cannot be had."""
        if len(self._refs) >= self.max_watches:
            self._make_room(0, 1)
            if len(self._refs) >= self.max_watches:
                return False
        try:
            wd = self._inotify.add(path, events | flags)  # type: ignore[union-attr]
        except OSError as exc:
            if watch.watch_errno_is_a_limit(exc) and not self._out_of_watches:
                self._out_of_watches = True
                log.warning("inotify: %s; listings are not kept until watches free up", exc)
            return False
        self._out_of_watches = False
        self._refs[wd] = self._refs.get(wd, 0) + 1
        plan.watches.append(wd)
        plan.seen.setdefault(wd, self._changes.get(wd, 0))
        return True

    def _drain(self) -> None:
        """Apply the queued events (under the lock): drop what they touch."""
        if self._inotify is None or not self._queued.poll(0):  # read() raises when empty
            return
        changed, overflow = self._inotify.read()
        if overflow:
            log.info("inotify queue overflowed: the listing cache starts again")
            self._epoch += 1
            self._clear()
        for wd in changed:
            if wd in self._refs:
                self._changes[wd] = self._changes.get(wd, 0) + 1
                self._drop_paths(list(self._path_users.get(wd, ())))
                for key in list(self._users.get(wd, ())):
                    self._drop(key)

    def _insert(self, key: Hashable, cached: Cached) -> None:
        if cached.size > self.max_bytes:
            self._unref(cached.watches)
            return
        if key in self._items:
            self._drop(key)
        self._make_room(cached.size, 0)
        self._items[key] = cached
        self.bytes += cached.size
        for wd in cached.watches:
            self._users.setdefault(wd, set()).add(key)

    def _make_room(self, size: int, watches: int) -> None:
        """Evict least recently used listings until ``size`` bytes and ``watches`` fit."""
        while self._items and (self.bytes + size > self.max_bytes
                               or len(self._refs) + watches > self.max_watches):
            self._drop(next(iter(self._items)))

    def _drop(self, key: Hashable) -> None:
        cached = self._items.pop(key)
        self.bytes -= cached.size
        for wd in cached.watches:
            users = self._users.get(wd)
            if users is not None:
                users.discard(key)
        self._unref(cached.watches)

    def _clear(self) -> None:
        self._drop_paths(list(self._paths))
        while self._items:
            self._drop(next(iter(self._items)))

    def _unref(self, watches: Sequence[int]) -> None:
        for wd in watches:
            left = self._refs.get(wd, 0) - 1
            if left > 0:
                self._refs[wd] = left
                continue
            self._refs.pop(wd, None)
            self._changes.pop(wd, None)
            self._users.pop(wd, None)
            self._path_users.pop(wd, None)
            if self._inotify is not None:
                self._inotify.remove(wd)

    def _release(self, plan: _Plan) -> None:
        with self._lock:
            self._release_locked(plan)

    def _release_locked(self, plan: _Plan) -> None:
        self._unref(plan.watches)
        plan.watches = []
        self._close_dir_fd(plan)

    @staticmethod
    def _close_dir_fd(plan: _Plan) -> None:
        if plan.dir_fd is not None:
            os.close(plan.dir_fd)
            plan.dir_fd = None


# A directory on the way to a kept listing: what can make the path lead elsewhere or
# nowhere (its entries renamed, created or deleted, itself moved, deleted or chmod-ed),
# not writes to its files. Added to whatever the watch asks already (IN_MASK_ADD): the
# same directory may be a kept listing too, whose watch needs every change.
_ABOVE = (watch.IN_CREATE | watch.IN_DELETE | watch.IN_MOVED_FROM | watch.IN_MOVED_TO
          | watch.IN_DELETE_SELF | watch.IN_MOVE_SELF | watch.IN_ATTRIB)
_ABOVE_FLAGS = watch.IN_ONLYDIR | watch.IN_DONT_FOLLOW | watch.IN_MASK_ADD  # never a symlink
