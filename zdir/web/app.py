"""The web view's HTTP side: read-only routes, the pages, and each view's JSON and NDJSON.

Three views, each at ``/VIEW/PATH/``: ``ls`` (a directory, merged), ``search``
(``-R --glob`` below it) and ``compare`` (``--compare -R`` of its sub-tree).
``?format=json`` and ``?format=ndjson`` give what ``zdir --json`` and
``zdir --ndjson`` print for the same request; the page itself is a shell whose
script reads the NDJSON and renders rows as they arrive.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple
from urllib.parse import urlencode

from jinja2 import Environment, FunctionLoader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import __version__, compareformat, jsonformat
from ..compare import compare
from ..errors import LocalProtocolError, Refused, Unreachable, UsageError, ZdirError
from . import paths
from .feed import Ask, Pipe, Workers, Write
from .guard import Guard

VIEWS = ("ls", "search", "compare")
FORMATS = {"html": "text/html; charset=utf-8", "json": "application/json",
           "ndjson": "application/x-ndjson"}
GLOB_CHARS = "*?["
ASSETS = ("app.js", "grid.js", "feed.js", "names.js", "app.css", "icon.svg")
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".svg": "image/svg+xml"}
# How an error the Client raises becomes an HTTP status (its code, when it has one, decides).
STATUS_BY_CODE = {"not_found": 404, "not_a_directory": 404, "permission_denied": 403,
                  "outside_root": 403, "symlink_loop": 404, "bad_path": 400,
                  "limit_exceeded": 400, "busy": 503, "timeout": 504}


class Settings(NamedTuple):
    """What the command line decides for the app."""

    server: str
    timeout: float
    server_key: Optional[str] = None
    curve_secret: Optional[str] = None
    token: Optional[str] = None
    hosts: Optional[frozenset] = None  # Host header names served; None: any
    modify_window: float = 1.0


class Asset(NamedTuple):
    body: bytes
    media_type: str
    tag: str  # a hash of the body, for ETag


def load_assets() -> Dict[str, Asset]:
    """The page's own files, read once from the package: no URL ever names a local file."""
    folder = resources.files(__package__) / "static"
    assets = {}
    for name in ASSETS:
        body = (folder / name).read_bytes()
        suffix = name[name.rindex("."):]
        assets[name] = Asset(body, ASSET_TYPES[suffix], hashlib.sha256(body).hexdigest()[:12])
    return assets


def _template_source(name: str) -> str:
    return (resources.files(__package__) / "templates" / name).read_text("utf-8")


def create_app(settings: Settings, connect: Optional[Callable[[], Any]] = None) -> Any:
    """The ASGI application: Starlette routes behind the Guard (host, token, headers)."""
    if connect is None:
        from ..client import Client

        def connect() -> Any:
            return Client(settings.server, timeout=settings.timeout,
                          server_key=settings.server_key, curve_secret=settings.curve_secret)

    assets = load_assets()
    env = Environment(loader=FunctionLoader(_template_source), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["static"] = lambda name: f"/static/{name}"
    page_template = env.get_template("page.html")
    state: Dict[str, Workers] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette):
        state["workers"] = Workers(connect)
        try:
            yield
        finally:
            state.pop("workers").close()

    async def home(request: Request) -> Response:
        return RedirectResponse("/ls/", status_code=302)

    async def static(request: Request) -> Response:
        asset = assets.get(request.path_params["name"])
        if asset is None:
            return Response("not found\n", status_code=404, media_type="text/plain")
        # Modules import each other by plain URL: revalidate (a 304) rather than version them.
        headers = {"Cache-Control": "no-cache", "ETag": f'"{asset.tag}"'}
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    def view(name: str) -> Callable[[Request], Any]:
        prefix = f"/{name}/"

        async def handle(request: Request) -> Response:
            path = paths.from_url(request.scope.get("raw_path") or b"", prefix)
            params = request.query_params
            fmt = params.get("format", "html")
            if fmt not in FORMATS:
                return _error(UsageError(f"format={fmt}: choose html, json or ndjson",
                                         code="usage"))
            try:
                query = _Query(name, path, params, settings)
            except UsageError as exc:
                return _error(exc)
            if fmt == "html":
                html = page_template.render(page_context(query, settings))
                return HTMLResponse(html)
            ask, write = plan(query, fmt)
            return await _answer(state["workers"].start(ask, write), FORMATS[fmt])

        return handle

    async def to_directory(request: Request) -> Response:
        return RedirectResponse(request.url.path + "/", status_code=301)

    routes = [Route("/", home), Route("/static/{name}", static)]
    for name in VIEWS:
        routes += [Route(f"/{name}", to_directory), Route(f"/{name}/{{path:path}}", view(name))]
    app = Starlette(routes=routes, lifespan=lifespan)
    return Guard(app, token=settings.token, hosts=settings.hosts)


class _Query:
    """One view's request, checked: the path, -a, and the search pattern or the mtime window."""

    def __init__(self, view: str, path: str, params: Any, settings: Settings) -> None:
        self.view = view
        self.path = path
        self.all = params.get("all", "") not in ("", "0", "false")
        self.q = params.get("q", "").strip()
        self.glob = search_glob(self.q)
        if view == "search" and not self.glob and params.get("format", "html") != "html":
            raise UsageError("q: a name or glob pattern to search for is needed")
        window = params.get("window", "")
        try:
            self.window = float(window) if window else settings.modify_window
        except ValueError:
            raise UsageError(f"window={window}: a number of seconds is needed") from None
        if not self.window >= 0:
            raise UsageError(f"window={window}: must be 0 or more")


def search_glob(q: str) -> str:
    """The search box's words as a ``--glob``: a pattern as typed, plain words as ``*words*``."""
    if not q or any(char in q for char in GLOB_CHARS):
        return q
    return f"*{q}*"


def plan(query: _Query, fmt: str) -> Tuple[Ask, Write]:
    """What to ask the node and how to write the answer: as the CLI's --json / --ndjson."""
    options: Dict[str, Any] = {"all": query.all}
    if query.view == "search":
        options.update(recursive=True, glob=[query.glob])
    elif query.view == "compare":
        options.update(recursive=True)
    path = query.path

    if query.view == "compare":
        def write_compare(reply: Any, out: Pipe) -> None:
            names = compare(reply, reply.sources, query.window)
            writer = jsonformat.write_json if fmt == "json" else jsonformat.write_ndjson
            extra = {"key": "names"} if fmt == "json" else {}
            writer(names, reply.sources, out, shape=compareformat.compare_dict, **extra)

        return (lambda client: client.stream(path, **options)), write_compare
    if fmt == "json":  # zdir --json: sorted by name
        def write_json(listing: Any, out: Pipe) -> None:
            listing.entries.sort()
            jsonformat.write_json(listing.entries, listing.sources, out)

        return (lambda client: client.list(path, **options)), write_json

    def write_ndjson(reply: Any, out: Pipe) -> None:  # zdir --ndjson: as the chunks arrive
        jsonformat.write_ndjson(reply, reply.sources, out)

    return (lambda client: client.stream(path, **options)), write_ndjson


async def _answer(pipe: Pipe, media_type: str) -> Response:
    """The status once the node has answered, then the body as it is written."""
    error = await pipe.outcome()
    if error is not None:
        async for _ in pipe.texts():  # nothing will come: let the worker finish
            pass
        return _error(error)
    return StreamingResponse(pipe.texts(), media_type=media_type,
                             headers={"X-Content-Type-Options": "nosniff"})


def _error(exc: BaseException) -> Response:
    """``{"error": {"code", "message"}}`` with a status that says whose fault it is."""
    if isinstance(exc, ZdirError):
        code, message = exc.code, exc.message
        if isinstance(exc, UsageError):
            status = 400
        elif isinstance(exc, LocalProtocolError):
            status = 400  # a path the protocol cannot carry (too long)
        elif isinstance(exc, Refused):
            status = STATUS_BY_CODE.get(code, 400)
        elif isinstance(exc, Unreachable):
            status = STATUS_BY_CODE.get(code, 502)
        else:
            status = 502  # the node answered with something that is not the protocol
    else:
        code, message, status = "internal", f"{type(exc).__name__} in zdir-web (see its log)", 500
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body + "\n", status_code=status, media_type="application/json")


def page_context(query: _Query, settings: Settings) -> Dict[str, Any]:
    """What page.html needs: names already escaped for people, URLs already encoded."""
    here = paths.to_url(query.path)
    crumbs = paths.crumbs(query.path)
    title = "/" + "/".join(c.shown for c in crumbs)
    keep = "?all=1" if query.all else ""  # what links carry along
    return {
        "view": query.view,
        "title": title,
        "crumbs": crumbs,
        "here": here,
        "up": _up_href(query, keep),
        "keep": keep,
        "crumb_view": "compare" if query.view == "compare" else "ls",
        "all": query.all,
        "q": query.q,
        "glob": query.glob,
        "window": query.window,
        "hidden_href": _hidden_href(query),
        "server": settings.server,
        "version": __version__,
    }


def _up_href(query: _Query, keep: str) -> Optional[str]:
    """Where Backspace goes: the parent, in the same view; from a search, the listing searched."""
    if query.view == "search":
        return f"/ls/{paths.to_url(query.path)}{keep}"
    if not query.path:
        return None
    return f"/{query.view}/{paths.to_url(paths.parent(query.path))}{keep}"


def _hidden_href(query: _Query) -> str:
    """The "Hidden" switch: this view with -a flipped, the search kept."""
    params = {"q": query.q if query.view == "search" else "", "all": "" if query.all else "1"}
    return "?" + urlencode({k: v for k, v in params.items() if v})
