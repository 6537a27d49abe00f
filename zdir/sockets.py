"""Frame-level helpers on ZeroMQ sockets: cheap sends and receives, monitors, polling.

Apart from ``reliable`` (the links and their liveness): the node's front end and the
walks' "done" socket use them as much as the links do.
"""

from __future__ import annotations

import itertools
from typing import List, Sequence

import zmq

# libzmq decodes frames smaller than its receive batch (ZMQ_IN_BATCH_SIZE, 8 KiB) in place,
# in one buffer shared with the frames around them: a frame kept pins all of it (about
# 18 KiB with its counters), and a node keeps a reply from each of its upstreams. Frames
# under 33 bytes (msg_t's max_vsm_size) are copied into the message by libzmq itself.
SHARED_BUFFER_BYTES = 8192
INLINE_BYTES = 33

_monitor_ids = itertools.count()
_SNDMORE = int(zmq.SNDMORE)


def watch(sock: zmq.Socket, events: int) -> zmq.Socket:
    """A PAIR socket that receives SOCK's monitor events (a fresh address each time:
    pyzmq's own reuses one per descriptor, which collides when sockets come and go)."""
    address = f"inproc://zdir-monitor-{next(_monitor_ids)}"
    sock.monitor(address, events)
    monitor = sock.context.socket(zmq.PAIR)
    monitor.linger = 0
    monitor.connect(address)
    monitor.getsockopt(zmq.EVENTS)  # looked at once, so that poll_fd signals what comes
    return monitor


def poll_fd(sock: zmq.Socket) -> int:
    """The descriptor to poll for a socket that is read until zmq.Again whenever it wakes
    the poll (a monitor, the walks' "done" socket), instead of the socket itself.

    A poll asks each ZeroMQ socket for its state on every pass (a system call, twice a
    poll), which on a loop's quiet sockets costs more than the message it waits for; a
    plain descriptor costs nothing. It is edge-triggered (ZMQ_FD): it signals news that
    comes after the socket was found empty, so a reader must read until zmq.Again each
    time it wakes, and once before it first polls (``watch`` does that for a monitor
    it makes before the watched socket connects).
    """
    return sock.getsockopt(zmq.FD)


def send_frames(sock: zmq.Socket, frames: Sequence[object], flags: int = 0) -> None:
    """``send_multipart``, cheaper: plain int flags (its ``SNDMORE | flags`` on pyzmq's
    enums costs more than sending a small frame). Frames of 64 KiB or more are not copied.

    Raises zmq.Again (with NOBLOCK) only before the first frame: libzmq takes the rest
    of a message whose first frame it took.
    """
    more = flags | _SNDMORE
    for frame in frames[:-1]:
        sock.send(frame, more, copy=False)
    sock.send(frames[-1], flags, copy=False)


def recv_frames(sock: zmq.Socket, flags: int = 0) -> List[bytes]:
    """``recv_multipart``, cheaper: each frame says whether more follow, where
    ``recv_multipart`` asks the socket (``RCVMORE``, a pyzmq enum lookup) per frame."""
    frame = sock.recv(flags, copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = sock.recv(flags, copy=False)
        frames.append(frame.bytes)
    return frames


def own_memory(frame: zmq.Frame) -> zmq.Frame:
    """``frame``, copied out of libzmq's shared receive buffer if it may be in one
    (SHARED_BUFFER_BYTES): 1,000 upstreams' chunks of a few KiB pinned 18 MiB."""
    if INLINE_BYTES <= len(frame) < SHARED_BUFFER_BYTES:
        return zmq.Frame(frame.bytes)
    return frame
