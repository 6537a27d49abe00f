"""The --upstreams-file format (docs/fleet.md): endpoints, optional names, comments, errors."""

from __future__ import annotations

import pytest

from zdir.config import Upstream, parse_upstreams, read_upstreams
from zdir.errors import UsageError

pytestmark = pytest.mark.timeout(30)

SAMPLE = """\
# rack 1
tcp://10.0.0.1:5556 node0001
tcp://10.0.0.2:5556    node0002   # the spare
   tcp://[::1]:5556

ipc:///run/zdir/#3.sock local3
\ttcp://relay:5557\trelay-b\t# tabs are white space too
"""


def test_endpoints_names_comments_and_blank_lines():
    assert parse_upstreams(SAMPLE, "ups.txt") == [
        Upstream("tcp://10.0.0.1:5556", "node0001"),
        Upstream("tcp://10.0.0.2:5556", "node0002"),
        Upstream("tcp://[::1]:5556", None),
        Upstream("ipc:///run/zdir/#3.sock", "local3"),  # '#' inside a word is not a comment
        Upstream("tcp://relay:5557", "relay-b"),
    ]


def test_an_empty_file_or_only_comments_is_no_upstreams():
    assert parse_upstreams("") == []
    assert parse_upstreams("# nothing yet\n\n   \n#tcp://h:1\n") == []


def test_windows_line_ends():
    assert parse_upstreams("tcp://h:1 a\r\ntcp://h:2\r\n") == [
        Upstream("tcp://h:1", "a"), Upstream("tcp://h:2")]


@pytest.mark.parametrize("text, message", [
    ("tcp://h:1\nnode0001\n", "ups.txt:2: 'node0001' is not an endpoint"),
    ("tcp://h:1\n\ntcp://h\n", "ups.txt:3: 'tcp://h': tcp endpoints need a host"),
    ("tcp://h:*\n", "ups.txt:1: 'tcp://h:*': tcp endpoints need a host and a port number"),
    ("tcp://h:1 a b\n", "ups.txt:1: expected 'ENDPOINT [NAME]', got 3 words"),
    ("tcp://h:1 a\ntcp://h:1 b\n", "ups.txt:2: endpoint tcp://h:1 is already on line 1"),
    ("tcp://h:1 a\n# a\ntcp://h:2 a\n", "ups.txt:3: name a is already on line 1"),
    ("tcp://h:1 " + "n" * 129 + "\n", "ups.txt:1: 'nnn"),
])
def test_bad_lines_are_named_by_file_and_line(text, message):
    with pytest.raises(UsageError) as caught:
        parse_upstreams(text, "ups.txt")
    assert str(caught.value).startswith(message)


def test_read_upstreams_names_the_file(tmp_path):
    good = tmp_path / "ups.txt"
    good.write_text("tcp://127.0.0.1:5556 b\n")
    assert read_upstreams(str(good)) == [Upstream("tcp://127.0.0.1:5556", "b")]
    with pytest.raises(UsageError, match="missing.txt: cannot read the upstreams file"):
        read_upstreams(str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"tcp://h:1\ntcp://h:2 caf\xe9\n")
    with pytest.raises(UsageError, match=r"bad.txt:2: not UTF-8"):
        read_upstreams(str(bad))
