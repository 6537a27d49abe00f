"""The web view over plain HTTP: the CLI's JSON shapes, paths, access control, headers."""

# ruff: noqa: F811  (fixtures imported from webtools arrive as same-named arguments)
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import clean_env, make_tree, run_client, unused_tcp_endpoint
from webtools import http_get, web  # noqa: F401  (web is a fixture, used as an argument)

from zdir.web import __main__ as command


def _cli(*args: str) -> dict:
    proc = run_client(*args)
    assert proc.returncode == 0, proc.stderr_text
    return json.loads(proc.stdout)


def _timeless(sources: list) -> list:
    """Source statuses without elapsed_ms, which differs from one request to the next."""
    return [{k: v for k, v in s.items() if k != "elapsed_ms"} for s in sources]


def _ndjson(text: str) -> list:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def chain(cluster, two_roots):
    a, _ = cluster.chain(*two_roots)
    return a


def test_every_view_answers_json_in_the_clis_shape(chain, web):
    site = web(chain.endpoint)
    for path, cli_args in [("/ls/?format=json", []),
                           ("/ls/sub/?format=json", ["sub"]),
                           ("/search/?q=in_&format=json", ["-R", "--glob", "*in_*"]),
                           ("/compare/?format=json", ["--compare", "-R"])]:
        answer = http_get(site.url, path)
        assert answer.status == 200, (path, answer.body)
        assert answer.headers["content-type"] == "application/json"
        ours, cli = answer.json(), _cli("--server", chain.endpoint, "--json", *cli_args)
        key = "names" if "compare" in path else "entries"
        assert ours[key] == cli[key], path
        assert _timeless(ours["sources"]) == _timeless(cli["sources"]), path
    found = http_get(site.url, "/search/?q=in_&format=json").json()["entries"]
    assert sorted(e["name"] for e in found) == ["sub/in_a", "sub/in_b"]


def test_every_view_answers_ndjson_in_the_clis_shape(chain, web):
    site = web(chain.endpoint)
    for path, cli_args in [("/ls/?format=ndjson", []),
                           ("/search/?q=*.txt&format=ndjson", ["-R", "--glob", "*.txt"]),
                           ("/compare/sub/?format=ndjson", ["--compare", "-R", "sub"])]:
        answer = http_get(site.url, path)
        assert answer.status == 200, (path, answer.body)
        assert answer.headers["content-type"] == "application/x-ndjson"
        proc = run_client("--server", chain.endpoint, "--ndjson", *cli_args)
        ours, cli = _ndjson(answer.body.decode()), _ndjson(proc.stdout_text)
        assert set(ours[-1]) == {"sources"}, "the sources line comes last"
        assert _timeless(ours[-1]["sources"]) == _timeless(cli[-1]["sources"])
        key = lambda item: json.dumps(item, sort_keys=True)  # noqa: E731
        assert sorted(ours[:-1], key=key) == sorted(cli[:-1], key=key), path
        assert all("name" in line for line in ours[:-1])


def test_paths_are_bytes_and_go_to_the_node_as_they_are(cluster, tmp_path, web):
    root = make_tree(tmp_path / "root", {"a b": {"x": ""}, "%2e%2e": {"y": ""},
                                         "100%": {"z": ""}, "caf\u00e9": {"menu": ""}})
    latin1 = os.fsencode(root) + b"/d\xe9j\xe0"  # not UTF-8
    os.mkdir(latin1)
    open(latin1 + b"/inside", "w").close()
    site = web(cluster.b(root).endpoint)

    def names(path: str) -> list:
        answer = http_get(site.url, path)
        assert answer.status == 200, (path, answer.body)
        return [e["name"] for e in answer.json()["entries"]]

    assert "d\udce9j\udce0" in names("/ls/?format=json")  # as zdir --json writes it
    assert names("/ls/d%E9j%E0/?format=json") == ["inside"]  # the exact bytes
    assert names("/ls/caf%C3%A9/?format=json") == ["menu"]
    assert names("/ls/a%20b/?format=json") == ["x"]
    assert names("/ls/100%25/?format=json") == ["z"]
    assert names("/ls/%252e%252e/?format=json") == ["y"]  # a literal name, never ..


@pytest.mark.parametrize("path, code", [
    ("/ls//etc/?format=json", "bad_path"),  # absolute
    ("/ls/../?format=json", "bad_path"),  # above the root
    ("/ls/..%2F..%2Fetc/?format=json", "bad_path"),
    ("/ls/sub/../../?format=ndjson", "bad_path"),
    ("/compare/../?format=json", "bad_path"),
    ("/ls/nowhere/?format=json", "not_found"),
])
def test_paths_the_node_refuses_are_refused(chain, web, path, code):
    site = web(chain.endpoint)
    answer = http_get(site.url, path)
    assert answer.status in (400, 404), answer.body
    assert answer.json()["error"]["code"] == code


def test_the_web_process_serves_no_file_but_its_own_assets(chain, web):
    site = web(chain.endpoint)
    assert http_get(site.url, "/static/app.js").status == 200
    for path in ["/static/..%2F__init__.py", "/static/../__init__.py", "/static/%2e%2e/app.py",
                 "/static/..%2F..%2F..%2Fpyproject.toml", "/static/templates", "/etc/passwd",
                 "/static//etc/passwd"]:
        answer = http_get(site.url, path)
        assert answer.status == 404, (path, answer.status)
        assert b"import" not in answer.body and b"root:" not in answer.body


def test_a_browser_that_leaves_mid_answer_stops_it_and_the_next_is_served(cluster, tmp_path, web):
    import socket
    from urllib.parse import urlsplit

    root = tmp_path / "many"
    root.mkdir()
    for i in range(30_000):
        os.close(os.open(root / f"n{i:05d}", os.O_CREAT | os.O_WRONLY, 0o644))
    site = web(cluster.b(root).endpoint)
    where = urlsplit(site.url)
    for _ in range(6):  # more than the web view's workers: none may stay stuck
        with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
            sock.sendall(b"GET /ls/?format=ndjson HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    answer = http_get(site.url, "/ls/?format=ndjson")
    lines = answer.lines()
    assert len(lines) == 30_001 and lines[-1]["sources"][0]["entries"] == 30_000
    assert "Traceback" not in site.log()


def test_bad_queries_are_usage_errors(chain, web):
    site = web(chain.endpoint)
    assert http_get(site.url, "/ls/?format=xml").status == 400
    assert http_get(site.url, "/search/?format=json").json()["error"]["code"] == "usage"
    assert http_get(site.url, "/compare/?window=-1&format=json").status == 400


def test_an_unreachable_server_is_a_bad_gateway(web):
    site = web(unused_tcp_endpoint(), "--timeout", "1")
    answer = http_get(site.url, "/ls/?format=ndjson")
    assert answer.status in (502, 504)
    assert answer.json()["error"]["code"] in ("unreachable", "timeout")
    assert http_get(site.url, "/ls/").status == 200  # the page itself still comes, and says so


def test_the_curve_options_reach_the_client(cluster, two_roots, tmp_path, web):
    from zdir import keys

    folder, allowed = tmp_path / "keys", tmp_path / "allow"
    folder.mkdir()
    allowed.mkdir()
    for name in ("server", "web"):
        keys.create_key_pair(name, str(folder))
    public = {name: str(folder / f"{name}{keys.PUBLIC_SUFFIX}") for name in ("server", "web")}
    shutil.copy(public["web"], allowed)
    b = cluster.b(two_roots[1], "--curve-secret", str(folder / f"server{keys.SECRET_SUFFIX}"),
                  "--curve-allow", str(allowed))
    site = web(b.endpoint, "--server-key", public["server"],
               env={"ZDIR_CURVE_SECRET": str(folder / f"web{keys.SECRET_SUFFIX}")})
    answer = http_get(site.url, "/ls/?format=json")
    assert answer.status == 200, answer.body
    assert {e["name"] for e in answer.json()["entries"]} == {"beta.txt", "both.txt", "sub"}
    stranger = web(b.endpoint, "--server-key", public["server"], "--timeout", "2")
    assert http_get(stranger.url, "/ls/?format=json").status in (502, 504)


def test_read_only_methods_only(chain, web):
    site = web(chain.endpoint)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        answer = http_get(site.url, "/ls/", method=method)
        assert answer.status == 405
        assert answer.headers["allow"] == "GET, HEAD"


def test_a_token_is_asked_for_and_checked(chain, web):
    site = web(chain.endpoint, env={"ZDIR_TOKEN": "s3cret-token"})

    def basic(user_password: str) -> dict:
        return {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()}

    refused = http_get(site.url, "/ls/?format=json")
    assert refused.status == 401
    assert refused.headers["www-authenticate"].startswith("Basic ")
    assert b"server_a" not in refused.body
    for headers in [basic("anyone:wrong"), basic("s3cret-token:"), {"Authorization": "Bearer x"},
                    {"Authorization": "s3cret-token"}, {"Authorization": "Basic !!"}]:
        assert http_get(site.url, "/ls/?format=json", headers).status == 401, headers
    assert http_get(site.url, "/static/app.js").status == 401
    for headers in [basic("anyone:s3cret-token"), basic(":s3cret-token"),
                    {"Authorization": "Bearer s3cret-token"}]:
        answer = http_get(site.url, "/ls/?format=json", headers)
        assert answer.status == 200, headers
        assert answer.json()["entries"]


def test_on_loopback_only_local_host_names_are_answered(chain, web):
    site = web(chain.endpoint)
    port = site.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", f"attacker.test:{port}"):
        assert http_get(site.url, "/ls/", {"Host": host}).status == 421, host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        assert http_get(site.url, "/ls/", {"Host": host}).status == 200, host
    proxied = web(chain.endpoint, "--allow-host", "files.example.org")
    assert http_get(proxied.url, "/ls/", {"Host": "files.example.org"}).status == 200


def test_the_page_has_a_strict_policy_and_no_inline_script(chain, web):
    site = web(chain.endpoint)
    page = http_get(site.url, "/ls/sub/")
    assert page.status == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    html = page.body.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert re.search(r"<script[^>]*>\s*[^<\s]", html) is None, "a script with a body"
    assert re.search(r"\son\w+\s*=", html) is None, "an inline event handler"
    assert re.search(r"\sstyle\s*=", html) is None, "an inline style"
    # Nothing from elsewhere: every asset is the page's own.
    for ref in re.findall(r"""(?:src|href)="([^"]*)\"""", html):
        assert ref.startswith(("/", "?")), ref
    for name in ("app.js", "grid.js", "feed.js", "names.js", "app.css"):
        text = http_get(site.url, f"/static/{name}").body.decode()
        assert re.search(r"https?://|url\(", text) is None, name


def test_the_command_line(tmp_path):
    def run(*args: str, env=None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "zdir.web", *args], capture_output=True,
                              text=True, env=clean_env(env), timeout=30)

    usage = run("--bind", "nowhere")
    assert usage.returncode == 2
    assert "HOST:PORT" in usage.stderr
    assert run("--server", "http://x").returncode == 2
    assert run(env={"ZDIR_TIMEOUT": "soon"}).returncode == 2
    missing_key = run("--server-key", str(tmp_path / "none.key"))
    assert missing_key.returncode == 2, missing_key.stderr
    without = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['starlette'] = None\n"
         "from zdir.web.__main__ import main; raise SystemExit(main([]))"],
        capture_output=True, text=True, env=clean_env(), timeout=30)
    assert without.returncode == 2
    assert "starlette is missing" in without.stderr and "zdir[web]" in without.stderr
    help_text = run("--help").stdout
    for word in ("--bind", "ZDIR_WEB_BIND", "ZDIR_TOKEN", "ZDIR_SERVER", "--server-key",
                 "--curve-secret", "127.0.0.1:8080"):
        assert word in help_text, word


def test_the_bind_address_decides_the_warnings_and_the_hosts():
    assert command.http_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert command.http_bind("[::1]:0") == ("::1", 0)
    for bad in ("8080", ":8080", "host:", "host:99999", "host:http"):
        with pytest.raises(ValueError):
            command.http_bind(bad)
    for host in ("127.0.0.1", "127.9.9.9", "::1", "localhost"):
        assert command.is_loopback(host) and command.warnings_for(host, None, None) == []
    for host in ("0.0.0.0", "::", "10.0.0.1", "files.example.org"):
        assert not command.is_loopback(host)
        warned = " ".join(command.warnings_for(host, None, None))
        assert "beyond loopback" in warned and "ZDIR_TOKEN" in warned
        assert "no token" not in " ".join(command.warnings_for(host, "t", "key"))
    assert command.served_hosts("0.0.0.0", []) is None
    assert command.served_hosts("127.0.0.1", ["*"]) is None
    assert command.served_hosts("127.0.0.1", []) == {"localhost", "127.0.0.1", "::1"}
    assert "proxy.example" in command.served_hosts("127.0.0.1", ["Proxy.Example"])


def test_it_stops_on_sigterm_with_status_0(chain, web):
    site = web(chain.endpoint)
    assert http_get(site.url, "/ls/?format=json").status == 200
    assert site.stop() == 0
