"""The web view's harness: a real ``python -m zdir.web`` on a free port, and headless Chromium.

The browser is Debian's (/usr/bin/chromium), driven by Playwright for Python;
nothing is downloaded. Tests that need it skip, with the reason, when either
is missing (``.ci/run`` installs Chromium when it can).

Fixtures live here rather than in a second conftest.py: the suite imports the
top one as ``conftest``, and two modules of that name would shadow each other.
Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from conftest import READY_TIMEOUT, Server

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'zdir[web]'")

WEB_READY = re.compile(r"^zdir-web listening on (?P<url>http://\S+)")
CHROMIUM = os.environ.get("ZDIR_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As Debian's chromium must run here: as root, with no network but loopback.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 720}


class Web(Server):
    """A real ``python -m zdir.web``; its URL comes from its ready line."""

    def __init__(self, args: List[str], log_path: Path, env: Optional[Dict[str, str]] = None):
        super().__init__("web", ["--bind", "127.0.0.1:0", *args], log_path, env=env)
        self.url = ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> "Web":
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(
                f"zdir.web printed no ready line in {timeout}s: {self.log()}") from None
        match = WEB_READY.match(line or "")
        if not match:
            self.stop()
            raise AssertionError(f"zdir.web: unexpected first line {line!r}: {self.log()}")
        self.url = match["url"]
        return self


@pytest.fixture
def web(tmp_path: Path):
    """Start ``zdir.web`` processes for one test: ``web(server_endpoint, *flags)``."""
    started: List[Web] = []

    def start(server: str, *args: str, env: Optional[Dict[str, str]] = None,
              wait: bool = True) -> Web:
        log = tmp_path / f"web-{len(started)}.log"
        process = Web(["--server", server, *args], log, env=env)
        started.append(process)
        return process.wait_ready() if wait else process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium under Playwright, for the whole session."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed (the test extra)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does, as root)")
    playwright = sync_api.sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True, timeout=30_000)
    except Exception as exc:  # a browser that cannot start here: say why
        playwright.stop()
        pytest.skip(f"Chromium at {CHROMIUM} did not start: {exc}")
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


# Installed before any of the page's own scripts: what the tests read back.
PAGE_PROBES = """
window.__zdir = {csp: [], longTasks: [], alerts: 0};
document.addEventListener('securitypolicyviolation', (e) => {
  window.__zdir.csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__zdir.longTasks.push(e.duration);
  }).observe({type: 'longtask', buffered: true});
} catch (_) {}
"""


class Page:
    """A browser tab for one test, with what it saw: dialogs, script errors, CSP reports."""

    def __init__(self, browser, tmp_path: Path, **context_options) -> None:
        self.tmp_path = tmp_path
        self.context = browser.new_context(viewport=VIEWPORT, **context_options)
        self.context.set_default_timeout(15_000)
        self.tab = self.context.new_page()
        self.tab.add_init_script(PAGE_PROBES)
        self.dialogs: List[str] = []
        self.errors: List[str] = []
        self.tab.on("dialog", self._dialog)
        self.tab.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, url: str) -> "Page":
        """Navigate and wait until the page has read its whole answer (or failed)."""
        self.tab.goto(url)
        self.wait_loaded()
        return self

    def wait_loaded(self) -> None:
        self.tab.wait_for_selector("body[data-state=done], body[data-state=error]",
                                   state="attached")

    def names(self) -> List[str]:
        """The name column of the rows in view, as shown."""
        return self.tab.eval_on_selector_all("#rows tr:not(.spacer) td.name",
                                             "cells => cells.map(c => c.textContent)")

    def shot(self, name: str) -> Path:
        path = self.tmp_path / f"{name}.png"
        self.tab.screenshot(path=str(path))
        return path

    def probes(self) -> dict:
        return self.tab.evaluate("window.__zdir || {csp: [], longTasks: []}")

    def check_clean(self) -> None:
        """No dialog, no script error, nothing the CSP had to block."""
        assert self.dialogs == [], self.dialogs
        assert self.errors == [], self.errors
        assert self.probes()["csp"] == []


@pytest.fixture
def page(browser, tmp_path: Path):
    tab = Page(browser, tmp_path)
    try:
        yield tab
        tab.check_clean()
    finally:
        tab.context.close()


class Answer:
    """One HTTP answer, read whole."""

    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        import json

        return json.loads(self.body)

    def lines(self) -> list:
        import json

        return [json.loads(line) for line in self.body.decode().splitlines()]


def http_get(url: str, path: str, headers: Optional[Dict[str, str]] = None,
             method: str = "GET", timeout: float = 30.0) -> Answer:
    """A plain request with http.client: the path goes out exactly as written."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host=bool(headers and "Host" in headers),
                              skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                      response.read())
    finally:
        connection.close()
