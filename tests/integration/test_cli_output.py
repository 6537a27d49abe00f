"""The client's output for people, checked against GNU ls and find, on a terminal and in pipes.

One server B serves a "zoo" for the whole module: files of chosen sizes, modes,
types and mtimes, laid out so that ``ls`` on the same directory is the oracle.
The progress line is in test_cli_progress.py; JSON, --source and --compare in
test_cli_sources.py.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from conftest import Cluster, clean_env, make_tree, run_client
from terminal import PEOPLE, TZ, posix_only, run_on_tty

pytestmark = pytest.mark.timeout(60)

needs_gnu_ls = pytest.mark.skipif(
    shutil.which("ls") is None
    or "GNU" not in subprocess.run(["ls", "--version"], capture_output=True, text=True).stdout,
    reason="the oracle is GNU coreutils ls",
)

SIZES = [0, 1, 1023, 1024, 1025, 1536, 10 * 1024 - 1, 10 * 1024, 10 * 1024 + 1,
         1048575, 1048576, 1048577, 123456789, 5 * 1024**3]
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


# -- colours, on a terminal or asked for -------------------------------------------------------

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


# -- pipes -------------------------------------------------------------------------------------

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
