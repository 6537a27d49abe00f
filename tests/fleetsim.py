"""A fleet of protocol-level zdir nodes in one process: N loopback ports served by one poller.

    python tests/fleetsim.py --nodes 1000 --entries 100 --refuse 100 --freeze 10 \\
        --upstreams-file fleet.txt
    # prints: fleetsim ready nodes=1000 ok=890 refuse=100 freeze=10 late=0 garbage=0 ...
    # then serves until SIGTERM or SIGINT (Ctrl-C)

    from fleetsim import FleetSim, assign_modes      # tests/ and benchmarks/
    with FleetSim(assign_modes(300, refuse=10)) as fleet:
        fleet.write_upstreams(path)
        ...

Each node speaks docs/protocol.md on its own ``tcp://127.0.0.1:PORT`` and is
written here from that document alone (msgpack, no zdir import), so that it
checks the real nodes rather than repeating them. A node lists K files
``f0000``, ``f0001``... in one chunk frame, the same on every node (so
``--compare`` says ``same``), and answers ``ping`` with its name, version and
uptime. Each node has a mode:

- ``ok``: answers at once.
- ``refuse``: nothing listens. The port is held by a bound TCP socket that never
  listens, so connecting is refused and no other program can take the port.
- ``freeze``: a TCP socket that accepts and never speaks: the ZMTP handshake
  stalls, as with a frozen process or a black-holed link.
- ``late``: answers ``list`` after ``late_delay`` seconds; ``ping`` at once, and
  libzmq answers ZMTP heartbeats all along (a slow file system, a live node).
- ``garbage``: answers every request with a frame that is not msgpack.

One thread (the caller's for the command, a background one for ``FleetSim``)
owns every socket and does all the waiting in one ``zmq.Poller``; replies of
late nodes wait in a heap of due times. The soft RLIMIT_NOFILE is raised
towards the hard one and the context's MAX_SOCKETS to what N nodes need.
"""

from __future__ import annotations

import argparse
import fnmatch
import heapq
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import msgpack
import zmq

log = logging.getLogger("fleetsim")

MODES = ("ok", "refuse", "freeze", "late", "garbage")
PROTOCOL_VERSION = 1
VERSION = "0-fleetsim"  # what ping says; real nodes say zdir's version
HOST = "127.0.0.1"
ENTRIES = 100
LATE_DELAY = 2.0  # seconds
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
MTIME = 1_700_000_000.0  # every entry's mtime: copies agree across nodes
FILE_MODE = 0o100644
GARBAGE = b"\xc1 is never msgpack"  # 0xc1 is the one byte msgpack never uses
FDS_PER_NODE = 4  # listener, mailbox, a connection or two: what N nodes ask of RLIMIT_NOFILE
SPARE_FDS = 256


class SimNode(NamedTuple):
    """One simulated node: its name, where it is, how it behaves."""

    name: str
    endpoint: str
    mode: str


def assign_modes(count: int, *, refuse: int = 0, freeze: int = 0, late: int = 0,
                 garbage: int = 0, seed: int = 0) -> List[str]:
    """Modes for ``count`` nodes, the unhealthy ones scattered (as failures are), reproducibly."""
    bad = refuse + freeze + late + garbage
    if bad > count:
        raise ValueError(f"{bad} unhealthy nodes asked of a fleet of {count}")
    modes = (["refuse"] * refuse + ["freeze"] * freeze + ["late"] * late
             + ["garbage"] * garbage + ["ok"] * (count - bad))
    random.Random(seed).shuffle(modes)
    return modes


def node_names(count: int, prefix: str = "node") -> List[str]:
    """``node0001``... padded to at least four digits, as fleets name hosts."""
    width = max(4, len(str(count)))
    return [f"{prefix}{index:0{width}d}" for index in range(1, count + 1)]


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (at most the hard limit); return it.

    Where there is no ``resource`` module (Windows) the limit is left alone.
    """
    try:
        import resource
    except ImportError:
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class FleetSim:
    """N simulated nodes served by one thread; ``start()`` binds them all, ``close()`` stops.

    ``requests[name]`` counts the requests each node received (``late`` nodes
    count on arrival), so a test can check that a request was not sent twice.
    """

    def __init__(self, modes: Sequence[str], *, entries: int = ENTRIES,
                 late_delay: float = LATE_DELAY, names: Optional[Sequence[str]] = None,
                 host: str = HOST, io_threads: int = 1, version: str = VERSION) -> None:
        unknown = set(modes) - set(MODES)
        if unknown:
            raise ValueError(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
        self.modes = list(modes)
        self.names = list(names) if names is not None else node_names(len(self.modes))
        if len(self.names) != len(self.modes) or len(set(self.names)) != len(self.names):
            raise ValueError("one distinct name per node")
        self.entries = entries
        self.late_delay = late_delay
        self.host = host
        self.version = version
        self.nodes: List[SimNode] = []
        self.requests: Dict[str, int] = dict.fromkeys(self.names, 0)
        self.errors: List[str] = []  # the simulator's own failures: tests assert it stays empty
        self._context = zmq.Context(io_threads)
        self._context.setsockopt(zmq.LINGER, 0)
        # Before the first socket: libzmq sizes its socket table once, when it starts.
        self._context.set(zmq.MAX_SOCKETS, len(self.modes) + 64)
        self._pipe: Optional[zmq.Socket] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._failure: Optional[BaseException] = None
        self._started = time.monotonic()
        self._chunks: Dict[Tuple[str, bool], bytes] = {}

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> "FleetSim":
        """Bind every node in the serving thread; return once all are bound (or raise)."""
        self._pipe = self._context.socket(zmq.PAIR)
        self._pipe.bind(f"inproc://fleetsim-{id(self)}")
        self._thread = threading.Thread(target=self._run, name="fleetsim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.close()
            raise RuntimeError(f"fleetsim: {len(self.modes)} nodes not bound in {timeout}s")
        if self._failure is not None:
            self.close()
            raise RuntimeError(f"fleetsim could not start: {self._failure}") from self._failure
        return self

    def close(self) -> None:
        """Stop the serving thread, close every socket; safe to call twice."""
        if self._pipe is not None:
            if self._thread is not None and self._thread.is_alive():
                self._pipe.send(b"stop")
                self._thread.join(STOP_TIMEOUT)
            self._pipe.close(linger=0)
            self._pipe = None
        if self._thread is not None and self._thread.is_alive():
            log.error("fleetsim: the serving thread did not stop; its sockets stay open")
            return  # term() would wait for them for ever
        if not self._context.closed:
            self._context.term()

    def __enter__(self) -> "FleetSim":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.modes)

    # -- what tests and scripts read ----------------------------------------------------------

    def by_mode(self, *modes: str) -> List[SimNode]:
        """The nodes in any of these modes, in fleet order."""
        return [node for node in self.nodes if node.mode in modes]

    def upstream_lines(self, nodes: Optional[Sequence[SimNode]] = None) -> List[str]:
        """``ENDPOINT NAME  # MODE``, one per node: the --upstreams-file format (docs/fleet.md)."""
        return [f"{n.endpoint} {n.name}  # {n.mode}" for n in (self.nodes if nodes is None
                                                                else nodes)]

    def write_upstreams(self, path: str, nodes: Optional[Sequence[SimNode]] = None) -> None:
        """Write an upstreams file in one step (a reader never sees half of it)."""
        counts = {mode: self.modes.count(mode) for mode in MODES}
        head = f"# fleetsim: {len(self.modes)} nodes, " + ", ".join(
            f"{count} {mode}" for mode, count in counts.items() if count)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write("\n".join([head, *self.upstream_lines(nodes)]) + "\n")
        os.replace(temporary, path)

    # -- the serving thread -------------------------------------------------------------------

    def _run(self) -> None:
        routers: Dict[zmq.Socket, int] = {}
        listeners: Dict[int, socket.socket] = {}
        held: List[socket.socket] = []  # refusing ports, and the frozen nodes' connections
        pipe = self._context.socket(zmq.PAIR)
        try:
            pipe.connect(f"inproc://fleetsim-{id(self)}")
            raise_fd_limit(FDS_PER_NODE * len(self.modes) + SPARE_FDS)
            poller = zmq.Poller()
            poller.register(pipe, zmq.POLLIN)
            for index, mode in enumerate(self.modes):
                endpoint = self._bind(index, mode, routers, listeners, held, poller)
                self.nodes.append(SimNode(self.names[index], endpoint, mode))
        except BaseException as exc:  # reported by start(), in the caller's thread
            self._failure = exc
            self._ready.set()
            self._close_all(pipe, routers, listeners, held)
            return
        self._started = time.monotonic()
        self._ready.set()
        try:
            self._serve(pipe, poller, routers, listeners, held)
        finally:
            self._close_all(pipe, routers, listeners, held)

    def _bind(self, index: int, mode: str, routers: Dict[zmq.Socket, int],
              listeners: Dict[int, socket.socket], held: List[socket.socket],
              poller: zmq.Poller) -> str:
        if mode in ("refuse", "freeze"):
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(raw)
            raw.bind((self.host, 0))
            if mode == "freeze":
                raw.listen(64)
                raw.setblocking(False)
                listeners[raw.fileno()] = raw
                poller.register(raw.fileno(), zmq.POLLIN)
            return f"tcp://{self.host}:{raw.getsockname()[1]}"
        router = self._context.socket(zmq.ROUTER)
        router.bind(f"tcp://{self.host}:*")
        routers[router] = index
        poller.register(router, zmq.POLLIN)
        return router.getsockopt_string(zmq.LAST_ENDPOINT)

    def _serve(self, pipe: zmq.Socket, poller: zmq.Poller, routers: Dict[zmq.Socket, int],
               listeners: Dict[int, socket.socket], held: List[socket.socket]) -> None:
        due: List[Tuple[float, int, zmq.Socket, List[bytes]]] = []  # late replies
        sequence = 0
        while True:
            wait = None if not due else max(0, int((due[0][0] - time.monotonic()) * 1000) + 1)
            for item, _ in poller.poll(wait):
                if item is pipe:
                    return
                if isinstance(item, int):
                    self._accept(listeners[item], held)
                    continue
                index = routers[item]  # type: ignore[index]
                while True:
                    try:
                        frames = item.recv_multipart(zmq.NOBLOCK)  # type: ignore[union-attr]
                    except zmq.Again:
                        break
                    reply, delay = self._answer(index, frames)
                    if delay:
                        sequence += 1
                        heapq.heappush(due, (time.monotonic() + delay, sequence, item, reply))
                    elif reply:
                        item.send_multipart(reply)  # type: ignore[union-attr]
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, _, router, reply = heapq.heappop(due)
                router.send_multipart(reply)

    def _accept(self, listener: socket.socket, held: List[socket.socket]) -> None:
        """A frozen node takes the connection and never says a word."""
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        held.append(connection)

    def _answer(self, index: int, frames: List[bytes]) -> Tuple[List[bytes], float]:
        """The reply to one message (peer id first) and how long to hold it; [] for none."""
        name, mode = self.names[index], self.modes[index]
        self.requests[name] += 1
        peer, rest = frames[0], frames[1:]
        if b"" not in rest:  # a DEALER without the delimiter: answered in its own framing
            return [peer, _error_header(b"", "", "bad_request", "no empty delimiter frame")], 0
        split = rest.index(b"")
        envelope, body = [peer, *rest[: split + 1]], rest[split + 1:]
        if mode == "garbage":
            return [*envelope, GARBAGE], 0
        try:
            reply, late = self._reply(name, mode, body)
        except Exception as exc:  # a simulator bug: still answer, and say so loudly
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            log.exception("fleetsim: %s", name)
            reply, late = [_error_header(b"", "", "internal", f"fleetsim: {exc}")], False
        return [*envelope, *reply], self.late_delay if late else 0

    def _reply(self, name: str, mode: str, body: List[bytes]) -> Tuple[List[bytes], bool]:
        """Header and chunk frames for one request, and whether they are to be held back."""
        if len(body) != 1:
            return [_error_header(b"", "", "bad_request", "a request is one frame")], False
        try:
            request = msgpack.unpackb(body[0], raw=False)
        except Exception:  # msgpack raises several types for bad bytes
            return [_error_header(b"", "", "bad_request", "not msgpack")], False
        if not isinstance(request, dict):
            return [_error_header(b"", "", "bad_request", "not a map")], False
        rid, op = request.get("id"), request.get("op")
        if not isinstance(rid, bytes) or not 1 <= len(rid) <= 64 or not isinstance(op, str):
            return [_error_header(b"", "", "bad_request", "'id' and 'op' are needed")], False
        if request.get("v") != PROTOCOL_VERSION:
            return [_error_header(rid, op, "unsupported_version", "v is 1")], False
        if op == "ping":
            source = _source(name, version=self.version,
                             uptime_s=round(time.monotonic() - self._started, 3))
            return [_header(rid, op, [source], 0)], False
        if op != "list":
            return [_error_header(rid, op, "unknown_op", f"{op!r} is not list or ping")], False
        late = mode == "late"
        elapsed = self.late_delay * 1000 if late else 0.0
        path = request.get("path", "")
        if path not in ("", ".", b"", b"."):
            error = {"code": "not_found", "message": "fleetsim nodes have only their top level"}
            return [_header(rid, op, [_source(name, ok=False, error=error)], 0)], late
        chunk, count = self._chunk(name, request)
        return [_header(rid, op, [_source(name, entries=count, elapsed_ms=elapsed)], 1),
                chunk], late

    def _chunk(self, name: str, request: Dict[str, Any]) -> Tuple[bytes, int]:
        """The node's listing as one chunk frame (column by column), and its entry count."""
        stat = request.get("stat", True) is not False
        globs, excludes = request.get("glob") or (), request.get("exclude") or ()
        if not globs and not excludes and (name, stat) in self._chunks:
            return self._chunks[(name, stat)], self.entries
        names = [f"f{index:04d}" for index in range(self.entries)]
        if globs or excludes:
            names = [n for n in names if (not globs or any(fnmatch.fnmatchcase(n, g)
                                                           for g in globs))
                     and not any(fnmatch.fnmatchcase(n, x) for x in excludes)]
        sizes = mtimes = modes = None
        if stat:
            sizes = [int(n[1:]) for n in names]
            mtimes = [MTIME] * len(names)
            modes = [FILE_MODE] * len(names)
        frame = msgpack.packb([name, names, "f" * len(names), sizes, mtimes, modes],
                              use_bin_type=True)
        if not globs and not excludes:
            self._chunks[(name, stat)] = frame
        return frame, len(names)

    def _close_all(self, pipe: zmq.Socket, routers: Dict[zmq.Socket, int],
                   listeners: Dict[int, socket.socket], held: List[socket.socket]) -> None:
        for router in routers:
            router.close(linger=0)
        for raw in held:
            raw.close()
        pipe.close(linger=0)


def _source(name: str, *, ok: bool = True, error: Optional[dict] = None, entries: int = 0,
            elapsed_ms: float = 0.0, version: Optional[str] = None,
            uptime_s: Optional[float] = None) -> Dict[str, Any]:
    source = {"name": name, "ok": ok, "endpoint": None, "error": error, "entries": entries,
              "truncated": False, "elapsed_ms": float(elapsed_ms)}
    if version is not None:
        source.update(version=version, uptime_s=uptime_s)
    return source


def _header(rid: bytes, op: str, sources: List[dict], chunks: int) -> bytes:
    return msgpack.packb({"v": PROTOCOL_VERSION, "id": rid, "op": op, "ok": True, "error": None,
                          "sources": sources, "chunks": chunks}, use_bin_type=True)


def _error_header(rid: bytes, op: str, code: str, message: str) -> bytes:
    return msgpack.packb({"v": PROTOCOL_VERSION, "id": rid, "op": op, "ok": False,
                          "error": {"code": code, "message": message}, "sources": [],
                          "chunks": 0}, use_bin_type=True)


# -- the command -------------------------------------------------------------------------------

def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python tests/fleetsim.py",
        description="Serve N simulated zdir nodes on loopback ports, from one process.")
    parser.add_argument("--nodes", type=int, required=True, metavar="N")
    parser.add_argument("--entries", type=int, default=ENTRIES, metavar="K",
                        help=f"files f0000... in every node's listing (default {ENTRIES})")
    for mode in MODES[1:]:
        parser.add_argument(f"--{mode}", type=int, default=0, metavar="N",
                            help=f"nodes that {mode} (default 0)")
    parser.add_argument("--late-delay", type=float, default=LATE_DELAY, metavar="SECONDS",
                        help=f"how late late nodes answer a list (default {LATE_DELAY})")
    parser.add_argument("--seed", type=int, default=0, help="which nodes get which modes")
    parser.add_argument("--prefix", default="node", help="node names: PREFIX0001...")
    parser.add_argument("--io-threads", type=int, default=1, metavar="N")
    parser.add_argument("--upstreams-file", required=True, metavar="FILE",
                        help="write 'ENDPOINT NAME  # MODE' per node here (docs/fleet.md)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Serve until SIGTERM or SIGINT; the ready line on stdout says the fleet is bound."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        modes = assign_modes(args.nodes, refuse=args.refuse, freeze=args.freeze, late=args.late,
                             garbage=args.garbage, seed=args.seed)
        fleet = FleetSim(modes, entries=args.entries, late_delay=args.late_delay,
                         names=node_names(args.nodes, args.prefix), io_threads=args.io_threads)
        fleet.start()
    except (ValueError, RuntimeError) as exc:
        print(f"fleetsim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        fleet.write_upstreams(args.upstreams_file)
        counts = " ".join(f"{mode}={modes.count(mode)}" for mode in MODES)
        print(f"fleetsim ready nodes={args.nodes} {counts} upstreams={args.upstreams_file}",
              flush=True)
        while not stop.wait(0.5):  # a bounded wait: Windows delivers Ctrl-C only between waits
            pass
    finally:
        fleet.close()
    return 1 if fleet.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
