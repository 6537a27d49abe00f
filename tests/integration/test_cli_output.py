"""The client's output for people, checked against GNU ls and find, on a terminal and in pipes.

One server B serves a "zoo" for the whole module: files of chosen sizes, modes,
types and mtimes, laid out so that ``ls`` on the same directory is the oracle.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from conftest import Cluster, clean_env, make_tree, run_client, unused_tcp_endpoint

pytestmark = pytest.mark.timeout(60)

needs_gnu_ls = pytest.mark.skipif(
    shutil.which("ls") is None
    or "GNU" not in subprocess.run(["ls", "--version"], capture_output=True, text=True).stdout,
    reason="the oracle is GNU coreutils ls",
)
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and ptys")

SIZES = [0, 1, 1023, 1024, 1025, 1536, 10 * 1024 - 1, 10 * 1024, 10 * 1024 + 1,
         1048575, 1048576, 1048577, 123456789, 5 * 1024**3]
TZ = "ZDT-5:30"  # a half-hour offset: dates and %z are really converted
NOW = time.time()
# name -> mtime in ns; whole microseconds, as the wire's float mtime holds them exactly
TIMES = {
    "recent": int(NOW - 3600) * 10**9 + 123456000,
    "old": int(NOW - 2 * 365 * 86400) * 10**9 + 500000000,
    "future": int(NOW + 2 * 86400) * 10**9,
    "epoch": 0,
    "tie_a": int(NOW - 7200) * 10**9,
    "tie_b": int(NOW - 7200) * 10**9,
}
MANY = 3000  # enough names to overflow a pipe's buffer
PEOPLE = {"TZ": TZ, "LS_COLORS": "", "TERM": "xterm"}  # the same settings whoever runs the tests


def build_zoo(root: Path) -> Path:
    sizes = root / "sizes"
    sizes.mkdir(parents=True)
    for size in SIZES:
        with open(sizes / f"s{size}", "wb") as handle:
            handle.truncate(size)  # sparse: 5 GiB costs nothing
    (sizes / "tie_a").write_bytes(b"x" * 100)
    (sizes / "tie_b").write_bytes(b"y" * 100)
    modes = root / "modes"
    modes.mkdir()
    for name, mode in [("plain", 0o644), ("exec", 0o755), ("setuid", 0o4755),
                       ("setgid_no_x", 0o2644), ("nothing", 0o000), ("private", 0o600)]:
        (modes / name).write_text(name)
        os.chmod(modes / name, mode)
    (modes / "sticky").mkdir()
    os.chmod(modes / "sticky", 0o1777)
    (modes / "dir").mkdir()
    if sys.platform != "win32":  # the tests that look at these are POSIX only
        os.symlink("plain", modes / "link")
        os.mkfifo(modes / "fifo")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(modes / "sock"))
    times = root / "times"
    times.mkdir()
    for name, ns in TIMES.items():
        (times / name).write_text(name)
        os.utime(times / name, ns=(ns, ns))
    make_tree(root / "many", {f"{i:05d}-a-name-long-enough-to-fill-a-pipe-quickly": ""
                              for i in range(MANY)})
    make_tree(root / "tree", {"a": {"b": {"deep.txt": "d"}, "x.txt": "x"}, ".hid": {"h": ""},
                              "top.txt": "t", "x.txt": "x"})
    return root


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Tuple[Path, str]:
    """(root, endpoint) of one server B over the zoo, for every test of this module."""
    root = build_zoo(tmp_path_factory.mktemp("zoo"))
    cluster = Cluster(tmp_path_factory.mktemp("zoo-logs"))
    try:
        yield root, cluster.b(root).endpoint
    finally:
        cluster.stop_all()


def zdir(endpoint: str, *args: str, env: Optional[Dict[str, str]] = None):
    proc = run_client("--server", endpoint, *args, env={**PEOPLE, **(env or {})})
    assert proc.returncode == 0, proc.stderr_text
    return proc.stdout_text.splitlines()


def gnu_ls(directory: Path, *args: str) -> List[str]:
    env = clean_env({"LC_ALL": "C", "TZ": TZ})
    for variable in ("LS_COLORS", "TIME_STYLE", "QUOTING_STYLE", "BLOCK_SIZE", "COLUMNS"):
        env.pop(variable, None)
    proc = subprocess.run(["ls", *args, str(directory)], capture_output=True, text=True,
                          env=env, check=True)
    return proc.stdout.splitlines()


def ls_long(directory: Path, *args: str) -> Dict[str, Tuple[str, str, str]]:
    """name -> (mode, size, date) from ``ls -ln``; the date is everything between size and name."""
    rows = {}
    for line in gnu_ls(directory, "-ln", *args):
        if line.startswith("total"):
            continue
        mode, _links, _uid, _gid, size, rest = line.split(None, 5)
        rest = rest.split(" -> ")[0]
        name = next(n for n in os.listdir(directory) if rest.endswith(" " + n))
        rows[name] = (mode.rstrip(".+"), size, rest[: -len(name) - 1])
    return rows


def zdir_long(endpoint: str, path: str, *args: str) -> Dict[str, Tuple[str, str, str]]:
    """name -> (mode, size, date) from ``zdir -l`` on a one-source listing."""
    rows = {}
    for line in zdir(endpoint, "-l", path, *args):
        mode, size, rest = line.split(None, 2)
        date, name = re.match(r"(.*) server_b (.*)$", rest).groups()
        rows[name.split(" -> ")[0]] = (mode, size, date)  # as ls_long: the name alone
    return rows


# -- GNU ls and find as oracles ---------------------------------------------------------------

@needs_gnu_ls
@posix_only
@pytest.mark.parametrize("path, human", [("sizes", False), ("sizes", True), ("modes", False)])
def test_modes_and_sizes_match_ls_l(zoo, path, human):
    root, endpoint = zoo
    flags = ("-h",) if human else ()
    ours = {n: (m, s) for n, (m, s, _) in zdir_long(endpoint, path, *flags).items()}
    theirs = {n: (m, s) for n, (m, s, _) in ls_long(root / path, *flags).items()}
    assert ours == theirs
    if human:
        assert ours["s5368709120"][1] == "5.0G" and ours["s1048575"][1] == "1.0M"


@needs_gnu_ls
@posix_only
@pytest.mark.parametrize("style", ["locale", "iso", "long-iso", "full-iso"])
def test_time_styles_match_ls(zoo, style):
    root, endpoint = zoo
    ours = {n: d for n, (_, _, d) in zdir_long(endpoint, "times", "--time-style", style).items()}
    ls_args = () if style == "locale" else (f"--time-style={style}",)
    theirs = {n: d for n, (_, _, d) in ls_long(root / "times", *ls_args).items()}
    assert ours == theirs
    assert len(set(map(len, ours.values()))) == 1  # one column width, as in ls


@needs_gnu_ls
@posix_only
@pytest.mark.parametrize("ours, theirs", [
    (("--sort", "size"), ("-S",)), (("-S", "-r"), ("-S", "-r")),
    (("--sort", "time"), ("-t",)), (("-t", "--reverse"), ("-t", "-r")),
    (("--sort", "name"), ()), (("-r",), ("-r",)),
])
@pytest.mark.parametrize("path", ["sizes", "times"])
def test_sort_orders_match_ls(zoo, path, ours, theirs):
    root, endpoint = zoo
    assert zdir(endpoint, path, *ours) == gnu_ls(root / path, "-1", *theirs)


@needs_gnu_ls
@posix_only
def test_classify_matches_ls_F(zoo):
    root, endpoint = zoo
    assert zdir(endpoint, "modes", "-F") == gnu_ls(root / "modes", "-1", "-F")


@pytest.mark.skipif(shutil.which("find") is None, reason="the oracle is find")
@pytest.mark.parametrize("ours, find_args", [
    (("-R", "-a"), ()),
    (("-R", "-a", "--glob", "x.txt"), ("-name", "x.txt")),
    (("-R", "--glob", "*.txt"), ("-name", "*.txt", "-not", "-path", "*/.*")),
    (("--max-depth", "2", "-a"), ("-maxdepth", "2")),
])
def test_recursive_names_match_find(zoo, ours, find_args):
    root, endpoint = zoo
    found = subprocess.run(["find", ".", "-mindepth", "1", *find_args], cwd=root / "tree",
                           capture_output=True, text=True, check=True).stdout.split()
    assert zdir(endpoint, "tree", *ours) == sorted(name[2:] for name in found)


# -- the terminal -----------------------------------------------------------------------------

def run_on_tty(*args: str, env: Optional[Dict[str, str]] = None, when: str = "",
               then: Callable[[subprocess.Popen], None] = lambda proc: None,
               timeout: float = 30) -> Tuple[int, str]:
    """Run the client with stdout and stderr on a pseudo-terminal; (status, what it showed).

    Once the terminal has shown ``when``, ``then(client)`` is called (to thaw a server, say).
    """
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "zdir.client", *args],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=clean_env({**PEOPLE, **(env or {})}))
    os.close(slave)
    shown, acted, ends = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < ends:
            if not select.select([master], [], [], ends - time.monotonic())[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if when and not acted and when.encode() in shown:
                acted = True
                then(proc)
        return proc.wait(timeout=10), shown.decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


BLUE_DIR = "\x1b[01;34mdir\x1b[0m"


@posix_only
def test_colour_on_a_terminal_only(zoo):
    _, endpoint = zoo
    status, shown = run_on_tty("--server", endpoint, "modes")
    assert status == 0
    assert BLUE_DIR in shown and "\x1b[01;32mexec\x1b[0m" in shown
    assert "\x1b[01;36mlink\x1b[0m" in shown and "\x1b[40;33mfifo\x1b[0m" in shown
    assert "\x1b" not in "".join(zdir(endpoint, "modes"))


@posix_only
@pytest.mark.parametrize("args, env", [(("--color=never",), {}), ((), {"NO_COLOR": "1"})])
def test_no_colour_on_a_terminal_when_asked(zoo, args, env):
    _, endpoint = zoo
    status, shown = run_on_tty("--server", endpoint, "modes", *args, env=env)
    assert status == 0 and "dir" in shown and "\x1b" not in shown


@pytest.mark.parametrize("args, env", [(("--color=always",), {}), (("--color",), {}),
                                       ((), {"ZDIR_COLOR": "always"}),
                                       (("--color=always",), {"NO_COLOR": "1"})])
def test_colour_forced_into_a_pipe(zoo, args, env):
    _, endpoint = zoo
    lines = zdir(endpoint, "modes", *args, env=env)
    assert BLUE_DIR in lines


def test_ls_colors_changes_the_directory_colour(zoo):
    _, endpoint = zoo
    lines = zdir(endpoint, "modes", "--color=always", "-F", env={"LS_COLORS": "di=01;35"})
    assert "\x1b[01;35mdir\x1b[0m/" in lines


@posix_only
def test_progress_line_while_waiting_then_blanked_before_the_listing(cluster, tmp_path):
    root = make_tree(tmp_path / "r", {"one": "1", "two": "2"})
    b = cluster.b(root)
    b.freeze()
    try:
        status, shown = run_on_tty("--server", b.endpoint, "--timeout", "20",
                                   when="waiting for", then=lambda client: b.thaw())
    finally:
        b.thaw()
    assert status == 0
    assert f"zdir: waiting for {b.endpoint}... 1." in shown
    blanked = shown.rindex(" \r")
    assert shown[blanked + 2:].split("\r\n") == ["one", "two", ""]


@contextlib.contextmanager
def silent_endpoint():
    """A port that accepts connections and never speaks: the client waits for a handshake."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"


@posix_only
def test_progress_line_gives_way_to_the_error():
    with silent_endpoint() as endpoint:
        status, shown = run_on_tty("--server", endpoint, "--timeout", "20")
    assert status == 4
    assert "waiting for" in shown
    assert shown[shown.rindex(" \r") + 2:].startswith("zdir: Unreachable")


@posix_only
def test_ctrl_c_ends_quietly_with_130():
    with silent_endpoint() as endpoint:
            status, shown = run_on_tty("--server", endpoint, "--timeout", "20",
                                   when="waiting for",
                                   then=lambda client: client.send_signal(signal.SIGINT))
    assert status == 130
    assert "Traceback" not in shown and shown.endswith(" \r")  # the line blanked, nothing more


@posix_only
def test_no_progress_in_a_pipe_nor_with_json():
    endpoint = unused_tcp_endpoint()
    piped = subprocess.Popen([sys.executable, "-m", "zdir.client", "--server", endpoint,
                              "--timeout", "1.5", "--retries", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    status, shown = run_on_tty("--server", endpoint, "--timeout", "1.5", "--retries", "0",
                               "--json")
    _, errors = piped.communicate(timeout=30)
    assert status == piped.returncode == 4
    assert b"waiting" not in errors and "waiting" not in shown
    assert "Unreachable" in shown


@posix_only
@pytest.mark.parametrize("args", [(), ("--ndjson",), ("-l", "--color=always")])
def test_a_closed_pipe_ends_quietly(zoo, args):
    _, endpoint = zoo
    client = subprocess.Popen([sys.executable, "-m", "zdir.client", "--server", endpoint,
                               "many", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    head = subprocess.Popen(["head", "-n", "1"], stdin=client.stdout, stdout=subprocess.PIPE)
    client.stdout.close()  # head holds the only reading end now
    first, _ = head.communicate(timeout=30)
    errors = client.stderr.read().decode()
    client.stderr.close()
    assert client.wait(timeout=30) == 0, errors
    assert errors == ""
    assert b"00000-a-name" in first


# -- JSON, NDJSON, --source -------------------------------------------------------------------

def test_ndjson_one_entry_per_line_then_the_sources(cluster, two_roots):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint, "-R", "--ndjson")
    assert proc.returncode == 0, proc.stderr_text
    *entries, last = [json.loads(line) for line in proc.stdout_text.splitlines()]
    document = json.loads(run_client("--server", a.endpoint, "-R", "--json").stdout)
    key = lambda e: (e["name"], e["source"])  # noqa: E731
    assert sorted(entries, key=key) == sorted(document["entries"], key=key)
    assert [s["name"] for s in last["sources"]] == ["server_a", "server_b"]
    only_b = run_client("--server", a.endpoint, "-R", "--ndjson", "--source", "server_b")
    assert {json.loads(line).get("source") for line in only_b.stdout_text.splitlines()} == {
        "server_b", None}


def test_source_shows_one_source_and_rejects_a_name_nobody_has(cluster, two_roots):
    a_root, b_root = two_roots
    a, b = cluster.chain(a_root, b_root)
    lines = run_client("--server", a.endpoint, "-l", "--source", "server_b").stdout_text
    assert [line.split()[-1] for line in lines.splitlines()] == ["beta.txt", "both.txt", "sub"]
    assert {line.split()[-2] for line in lines.splitlines()} == {"server_b"}
    wrong = run_client("--server", a.endpoint, "--source", "server_z")
    assert wrong.returncode == 2
    assert "server_z" in wrong.stderr_text and "server_a, server_b" in wrong.stderr_text
    assert run_client("--server", a.endpoint, "--json", "--ndjson").returncode == 2
    assert run_client("--server", a.endpoint, "--compare", "--sort", "size").returncode == 2
    assert run_client("--server", a.endpoint, env={"ZDIR_COLOR": "sometimes"}).returncode == 2


# -- --compare ----------------------------------------------------------------------------------

T0 = 1_600_000_000


def touch(path: Path, seconds: float) -> None:
    os.utime(path, (seconds, seconds))


def differing_trees(tmp_path: Path) -> Tuple[Path, Path]:
    """Two roots that differ in every way --compare can tell, on the top level and below."""
    a = make_tree(tmp_path / "a", {"same.txt": "same", "size.txt": "1", "kind": {},
                                   "mtime.txt": "m", "close.txt": "c", "only_a.txt": "a",
                                   "sub": {"deep_a": "", "both": "b"}})
    b = make_tree(tmp_path / "b", {"same.txt": "same", "size.txt": "22", "kind": "file",
                                   "mtime.txt": "m", "close.txt": "c", "only_b.txt": "b",
                                   "sub": {"deep_b": "", "both": "b"}})
    for root in (a, b):
        for path in root.rglob("*"):
            touch(path, T0)
    touch(b / "mtime.txt", T0 + 3600)
    touch(a / "close.txt", T0 + 0.4)  # within the default modify window
    return a, b


def statuses(lines: Sequence[str]) -> Dict[str, str]:
    return dict(reversed(re.split(r"  +", line, maxsplit=1)) for line in lines)


def test_compare_tells_every_difference(cluster, tmp_path):
    a_root, b_root = differing_trees(tmp_path)
    a, b = cluster.chain(a_root, b_root)
    proc = run_client("--server", a.endpoint, "--compare", "-R")
    assert proc.returncode == 0, proc.stderr_text
    assert statuses(proc.stdout_text.splitlines()) == {
        "close.txt": "same",
        "kind": "differs (type)",
        "mtime.txt": "differs (mtime)",
        "only_a.txt": "only on server_a",
        "only_b.txt": "only on server_b",
        "same.txt": "same",
        "size.txt": "differs (size)",
        "sub": "same",
        "sub/both": "same",
        "sub/deep_a": "only on server_a",
        "sub/deep_b": "only on server_b",
    }
    exact = run_client("--server", a.endpoint, "--compare", "--modify-window", "0", "-r")
    lines = exact.stdout_text.splitlines()
    assert lines[-1].endswith("close.txt") and statuses(lines)["close.txt"] == "differs (mtime)"
    document = json.loads(run_client("--server", a.endpoint, "--compare", "--json").stdout)
    assert [s["name"] for s in document["sources"]] == ["server_a", "server_b"]
    by_name = {record["name"]: record for record in document["names"]}
    assert by_name["size.txt"]["status"] == "differs"
    assert by_name["size.txt"]["differs"] == ["size"]
    assert by_name["size.txt"]["sources"]["server_b"]["size"] == 2
    assert by_name["only_a.txt"]["missing"] == ["server_b"]
    assert set(by_name["kind"]["sources"]) == {"server_a", "server_b"}
    assert by_name["kind"]["sources"]["server_a"]["type"] == "dir"
    ndjson = run_client("--server", a.endpoint, "--compare", "--ndjson").stdout_text
    assert [json.loads(line) for line in ndjson.splitlines()][:-1] == document["names"]


def test_compare_three_sources_and_choosing_two(cluster, tmp_path):
    roots = {name: make_tree(tmp_path / name, files) for name, files in [
        ("a", {"all.txt": "x", "ac.txt": "x"}),
        ("b", {"all.txt": "x", "b.txt": "x"}),
        ("c", {"all.txt": "x", "ac.txt": "x"}),
    ]}
    for root in roots.values():
        for path in root.iterdir():
            touch(path, T0)
    c = cluster.b(roots["c"], "--name", "server_c")
    b = cluster.b(roots["b"], "--upstream", c.endpoint)
    a = cluster.a(roots["a"], b.endpoint)
    every = run_client("--server", a.endpoint, "--compare")
    assert statuses(every.stdout_text.splitlines()) == {
        "ac.txt": "only on server_a, server_c", "all.txt": "same", "b.txt": "only on server_b"}
    two = run_client("--server", a.endpoint, "--compare", "--source", "server_a",
                     "--source", "server_c")
    assert statuses(two.stdout_text.splitlines()) == {"ac.txt": "same", "all.txt": "same"}


def test_compare_with_a_failed_source_is_partial(cluster, tmp_path):
    a_root = make_tree(tmp_path / "a", {"mine.txt": "m"})
    a = cluster.a(a_root, unused_tcp_endpoint(),
                  args=["--upstream-timeout", "0.3", "--upstream-retries", "0"])
    proc = run_client("--server", a.endpoint, "--compare", "--json")
    assert proc.returncode == 3
    record = json.loads(proc.stdout)["names"][0]
    assert record["status"] == "only" and record["missing"] == []
    assert len(record["unknown"]) == 1  # the upstream that never answered
    assert "failed" in proc.stderr_text


# -- help and version ---------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["zdir.client", "zdir.server_a", "zdir.server_b"])
def test_help_shows_defaults_environment_and_an_example(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                          text=True, env=clean_env(), timeout=30)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # as if argparse had not wrapped it
    assert "(default: " in text and "env ZDIR_" in text and "example" in text


def test_version_and_overview():
    from zdir import __version__

    version = subprocess.run([sys.executable, "-m", "zdir", "--version"], capture_output=True,
                             text=True, env=clean_env(), timeout=30)
    assert (version.returncode, version.stdout) == (0, f"zdir {__version__}\n")
    overview = subprocess.run([sys.executable, "-m", "zdir"], capture_output=True, text=True,
                              env=clean_env(), timeout=30)
    assert overview.returncode == 0
    for command in ("zdir.client", "zdir.server_a", "zdir.server_b"):
        assert f"python -m {command}" in overview.stdout
