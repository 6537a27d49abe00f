"""ZMTP 3.1 spoken by hand: a peer that can do what libzmq peers never would (tests only).

A hostile upstream sends millions of frames in one write, or announces a frame of
gigabytes; a libzmq peer in the test would queue them first and be slower than the
code under test.
"""

from __future__ import annotations

import socket
import struct
from typing import List, Optional, Sequence, Tuple

from zdir import protocol

WAIT = 5.0  # seconds a socket operation may take before the test fails


def reply_frames(request_id: bytes, chunks: Sequence[bytes] = ()) -> List[bytes]:
    """A good reply (after the delimiter): a header naming one source, then the chunks."""
    header = protocol.ReplyHeader(request_id, "list", True, None,
                                  (protocol.SourceStatus("fake", True),), len(chunks))
    return [protocol.encode_header(header), *chunks]


class ZmtpPeer:
    """ZMTP 3.1 (NULL mechanism, as a ROUTER) spoken by hand over a TCP socket.

    Only this can send millions of frames in one write, as a hostile peer would; a
    libzmq peer in the test would queue them first and be slower than the link.
    """

    GREETING = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\0") + b"\0" * 32
    READY = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"ROUTER"

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.endpoint = "tcp://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.conn: Optional[socket.socket] = None

    def accept(self) -> None:
        """Take the link's next connection and do the handshake."""
        if self.conn is not None:
            self.conn.close()
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(WAIT)
        self.conn.sendall(self.GREETING)
        self._exactly(64)
        self.conn.sendall(self.frame(self.READY, command=True))
        flags, body = self._frame()
        assert flags & 4 and body.startswith(b"\x05READY"), body

    @staticmethod
    def frame(body: bytes, more: bool = False, command: bool = False) -> bytes:
        flags = more | command << 2
        if len(body) > 255:
            return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body
        return bytes([flags, len(body)]) + body

    def _exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            got = self.conn.recv(size - len(data))  # type: ignore[union-attr]
            assert got, "the link closed the connection"
            data += got
        return bytes(data)

    def _frame(self) -> Tuple[int, bytes]:
        flags = self._exactly(1)[0]
        size = struct.unpack(">Q", self._exactly(8))[0] if flags & 2 else self._exactly(1)[0]
        return flags, self._exactly(size)

    def receive(self) -> protocol.Request:
        """The next request, answering heartbeats on the way."""
        frames = []
        while True:
            flags, body = self._frame()
            if flags & 4:
                if body.startswith(b"\x04PING"):  # name, TTL (2 bytes), context
                    self.conn.sendall(self.frame(b"\x04PONG" + body[7:], command=True))
                continue
            frames.append(body)
            if not flags & 1:
                assert frames[0] == b"", "the link must speak REQ's envelope"
                return protocol.decode_request(frames[1:])

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def flood(request_id: bytes, frames: int) -> bytes:
    """A reply of FRAMES empty chunk frames, as the bytes on the wire (2 bytes a frame)."""
    head = ZmtpPeer.frame(b"", more=True) + ZmtpPeer.frame(reply_frames(request_id)[0], True)
    return head + b"\x01\x00" * (frames - 1) + b"\x00\x00"


def good_reply(request_id: bytes) -> bytes:
    return ZmtpPeer.frame(b"", more=True) + ZmtpPeer.frame(reply_frames(request_id)[0])




def huge_frame_header(request_id: bytes, size: int) -> bytes:
    """The start of a reply whose chunk frame announces SIZE bytes (only its header is sent)."""
    head = ZmtpPeer.frame(b"", more=True) + ZmtpPeer.frame(reply_frames(request_id, [b""])[0],
                                                           True)
    return head + bytes([2]) + struct.pack(">Q", size) + b"\0" * 4096
