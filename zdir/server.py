"""The server command shared by server_a and server_b: flags, configuration, signals, ready line."""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import NamedTuple, Optional, Sequence, Tuple

from . import config
from .errors import UsageError, ZdirError, exit_code
from .lister import DEFAULT_CHUNK_ENTRIES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES
from .node import Node
from .nodeconfig import NodeConfig
from .upstreams import descriptors_needed

log = logging.getLogger(__name__)


class Preset(NamedTuple):
    """What distinguishes server_a from server_b: defaults only."""

    name: str
    bind: str
    upstreams: Tuple[str, ...]
    description: str


def server_flags(preset: Preset) -> config.Flags:
    flags = config.Flags(
        f"python -m zdir.{preset.name}",
        preset.description,
        epilog=(
            "example:\n"
            "  %(prog)s --root /srv/files --bind 'tcp://0.0.0.0:*'"
            + (" --upstream tcp://hostb:5556" if preset.upstreams else "")
            + "\n\nOnce bound it prints one line on stdout:\n"
            f"  {preset.name} listening on ENDPOINT root=DIR\n"
            "SIGINT or SIGTERM stops it within a second (exit 0)."
        ),
    )
    flags.add("--root", default=".", metavar="DIR", help="directory to serve, read-only")
    flags.add("--bind", default=preset.bind, type=config.bind_endpoint, metavar="ENDPOINT",
              help="where to listen; a port of * picks a free one")
    flags.add("--name", default=preset.name, type=config.source_name,
              help="this source's name, as users see it")
    flags.add("--upstream", default=list(preset.upstreams), type=config.endpoint, many=True,
              metavar="ENDPOINT", help="a node to ask too; repeat for several")
    flags.add("--upstreams-file", metavar="FILE",
              help="more upstreams, one 'ENDPOINT [NAME]' per line, # comments (docs/fleet.md); "
                   "re-read on SIGHUP; with it, the default --upstream is not used")
    flags.add("--workers", default=config.WORKERS, type=config.positive_int, metavar="N",
              help="requests served at once")
    flags.add("--upstream-timeout", "--timeout", default=config.UPSTREAM_TIMEOUT,
              type=config.positive_float, metavar="SECONDS",
              help="how long to wait for the upstreams and the local listing when a request "
                   "carries no deadline (zdir clients always send one)")
    flags.add("--upstream-retries", "--retries", default=config.UPSTREAM_RETRIES,
              type=config.count, metavar="N",
              help="re-send a request to an upstream whose connection was lost before it "
                   "replied, if it comes back within a second (a live upstream is never "
                   "asked twice)")
    flags.add("--max-pending", default=config.MAX_PENDING, type=config.count, metavar="N",
              help="requests queued for a busy server before it answers 'busy'")
    flags.add("--max-request-bytes", default=config.MAX_REQUEST_BYTES,
              type=config.positive_int, metavar="N",
              help="larger messages are dropped and their sender disconnected")
    flags.add("--max-reply-bytes", default=config.MAX_REPLY_BYTES, type=config.positive_int,
              metavar="N", help="an upstream reply larger than this (each frame counting "
                                "as at least 4 KiB) fails that upstream as limit_exceeded")
    flags.add("--max-entries", default=DEFAULT_MAX_ENTRIES, type=config.positive_int,
              metavar="N", help="entries per reply from this node's root")
    flags.add("--max-depth", default=DEFAULT_MAX_DEPTH, type=config.positive_int, metavar="N",
              help="deepest level a recursive listing descends")
    flags.add("--chunk-entries", default=DEFAULT_CHUNK_ENTRIES, type=config.positive_int,
              metavar="N", help="entries per chunk frame")
    flags.add("--cache-mb", default=config.CACHE_MB, type=config.count, metavar="MB",
              help="memory for listings kept between requests and served while their "
                   "directory is unchanged; 0 turns the cache off")
    flags.add("--stat-ttl", default=config.STAT_TTL, type=config.non_negative_float,
              metavar="SECONDS", help="how old the sizes, mtimes and modes of a kept "
                                       "listing may be; 0 keeps names-only listings alone")
    flags.add("--curve-secret", metavar="FILE",
              help="this node's secret key file: turns CURVE encryption on")
    flags.add("--curve-allow", metavar="DIR",
              help="accept only clients whose public key file is in DIR")
    flags.add("--upstream-server-key", metavar="FILE",
              help="upstreams' public key file: encrypts the upstream hop")
    flags.add("--log-level", default=config.LOG_LEVEL,
              choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
              help="stderr log level")
    return flags


def node_config(args, preset: Preset) -> NodeConfig:
    """Check the flags against the world (the root exists) and build the node's config."""
    root = os.path.realpath(args.root)
    if not os.path.isdir(root):
        what = "not a directory" if os.path.exists(root) else "does not exist"
        raise UsageError(f"--root {args.root}: {what}")
    curve_server = upstream_setup = None
    if args.curve_secret or args.curve_allow or args.upstream_server_key:
        from . import keys  # only CURVE deployments pay for this import

        curve_server, upstream_setup = keys.node_security(
            args.curve_secret, args.curve_allow, args.upstream_server_key
        )
    listed = list(args.upstream)
    if args.upstreams_file and listed == list(preset.upstreams):
        listed = []  # the preset's upstream is a default, not the user's choice
    same_names = {f: getattr(args, f) for f in NodeConfig._fields if hasattr(args, f)}
    return NodeConfig(
        **{**same_names, "root": root},
        upstreams=tuple(config.Upstream(endpoint) for endpoint in listed),
        cache_bytes=args.cache_mb << 20,
        curve_server=curve_server,
        upstream_setup=upstream_setup,
    )


def main(argv: Optional[Sequence[str]], preset: Preset) -> int:
    """Run a server until SIGINT or SIGTERM; returns the exit status."""
    try:
        args = server_flags(preset).parse(argv)
        logging.basicConfig(
            level=args.log_level, stream=sys.stderr,
            format="%(asctime)s " + args.name + " %(levelname)s %(message)s",
        )
        cfg = node_config(args, preset)
        node = Node(cfg)
        endpoint = node.bind()
        raise_descriptor_limit(descriptors_needed(cfg, len(node.links)))
    except ZdirError as exc:
        print(f"{preset.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exit_code(exc)
    _warn_if_exposed(cfg, [link.endpoint for link in node.links])
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGBREAK", None)):
        if signum is not None:
            signal.signal(signum, lambda *_: node.stop())
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: node.reload())
    # A signal may land on any thread (a worker, libzmq's): Python then runs the
    # handler only once the loop's thread runs again. Its byte on the wake-up
    # socket ends the loop's poll, wherever the signal landed.
    signal.set_wakeup_fd(node.wakeup_fd(), warn_on_full_buffer=False)
    print(f"{cfg.name} listening on {endpoint} root={cfg.root}", flush=True)
    node.serve()
    log.info("stopped")
    return 0


def raise_descriptor_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; refuse to run when even that is short.

    Every upstream costs a few descriptors and every client connection one: running
    out while serving locks new clients out, so it is checked once, here.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, needed, 1 << 16)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):  # macOS caps it below RLIM_INFINITY
            pass
    if soft < needed:
        raise UsageError(
            f"this configuration needs about {needed} file descriptors, but the limit is "
            f"{soft} (ulimit -n; hard limit {hard}): raise it, e.g. LimitNOFILE= in the "
            "systemd unit")
    log.debug("file descriptor limit %d (about %d needed)", soft, needed)


def _warn_if_exposed(cfg: NodeConfig, upstreams: Sequence[str]) -> None:
    """Plaintext is the default only because loopback never leaves the host: say so otherwise."""
    if cfg.curve_server is None and _off_host(cfg.bind):
        log.warning(
            "listening on %s without CURVE: anyone who can reach it can list %s "
            "(see docs/security.md)", cfg.bind, cfg.root,
        )
    if cfg.upstream_setup is None:
        for upstream in filter(_off_host, upstreams):
            log.warning(
                "asking %s without CURVE: listings cross the network in clear text "
                "(--upstream-server-key; see docs/security.md)", upstream,
            )


def _off_host(endpoint: str) -> bool:
    """A TCP endpoint whose host is not loopback (a wildcard or an interface counts as off)."""
    transport, _, address = endpoint.partition("://")
    host = address.rpartition(":")[0].strip("[]")
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return transport == "tcp" and not loopback
