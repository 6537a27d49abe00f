"""Output for fleets, without servers: the stderr summary, --ping's states, --compare, --source."""

from __future__ import annotations

import argparse
import io
import random
from typing import List, Optional, Sequence

import pytest

from zdir import compareformat, problems
from zdir.cli import _chosen_sources, _ping
from zdir.compare import compare, placement
from zdir.errors import UsageError
from zdir.nodeset import HANDFUL, expand, fold
from zdir.protocol import SourceStatus

pytestmark = pytest.mark.timeout(30)

NAMES = [f"node{i:04d}" for i in range(1, 1001)]


def fleet(failures: Optional[dict] = None, names: Sequence[str] = NAMES,
          truncated: Sequence[str] = ()) -> List[SourceStatus]:
    """Sources that answered, but those in ``failures`` (name -> code) and ``truncated``."""
    failures = failures or {}
    sources = []
    for name in names:
        code = failures.get(name)
        if name in truncated:
            sources.append(SourceStatus(name, True, truncated=True, error={
                "code": "limit_exceeded", "message": "over --max-entries"}))
        elif code:
            sources.append(SourceStatus(name, False, endpoint=f"tcp://h:{len(sources)}",
                                        error={"code": code, "message": f"{code} message"}))
        else:
            sources.append(SourceStatus(name, True, version="0.4.0", uptime_s=1.5))
    return sources


# -- the stderr summary -------------------------------------------------------------------------

def test_a_fleet_with_two_failures_is_one_line_naming_both():
    sources = fleet({"node0042": "timeout", "node0777": "unreachable"})
    assert problems.source_problems(sources) == [
        "998 of 1000 sources answered; failed: node0042 (timeout), node0777 (unreachable)"]


def test_many_failures_are_folded_per_code_in_order_of_appearance():
    rng = random.Random(5)
    picked = rng.sample(NAMES, 110)
    unreachable, timeout = picked[:100], picked[100:]
    failures = {**dict.fromkeys(unreachable, "unreachable"), **dict.fromkeys(timeout, "timeout")}
    (line,) = problems.source_problems(fleet(failures))
    first = min(picked, key=NAMES.index)
    groups = [(fold(unreachable), "unreachable"), (fold(timeout), "timeout")]
    if failures[first] == "timeout":
        groups.reverse()
    assert line == ("890 of 1000 sources answered; failed: "
                    + ", ".join(f"{names} ({code})" for names, code in groups))
    assert set(expand(fold(unreachable))) == set(unreachable)


def test_refusals_cut_short_and_not_found_in_a_fleet():
    sources = fleet({"node0003": "permission_denied", "node0004": "not_found"},
                    truncated=["node0009"])
    assert problems.source_problems(sources) == [
        "999 of 1000 sources answered; failed: node0009 (limit_exceeded); "
        "refused: node0003 (permission_denied)"]


def test_a_healthy_fleet_says_nothing():
    assert problems.source_problems(fleet()) == []
    assert problems.source_problems(fleet({"node0004": "not_found"})) == []


def test_a_handful_of_sources_keeps_one_line_each_with_its_message():
    sources = fleet({"b": "unreachable", "c": "permission_denied", "d": "not_found"},
                    names=["a", "b", "c", "d"])
    assert problems.source_problems(sources) == [
        "source b (tcp://h:1) failed: unreachable: unreachable message",
        "source c (tcp://h:2) refused: permission_denied: permission_denied message"]


# -- --ping -------------------------------------------------------------------------------------

class FakeClient:
    def __init__(self, sources: Sequence[SourceStatus]) -> None:
        self.sources = tuple(sources)

    def ping(self):
        return self.sources


def ping_lines(sources: Sequence[SourceStatus], verbose: bool = False) -> List[str]:
    args = argparse.Namespace(json=False, ndjson=False, verbose=verbose)
    out = io.StringIO()
    _ping(FakeClient(sources), args)[1](out)  # type: ignore[arg-type]
    return out.getvalue().splitlines()


def test_ping_of_a_fleet_is_one_line_per_state():
    sources = fleet({"node0042": "timeout", "node0777": "unreachable", "node0778": "unreachable"})
    assert ping_lines(sources) == [
        "ok version=0.4.0  997  node[0001-0041,0043-0776,0779-1000]",
        "timeout             1  node0042",
        "unreachable         2  node[0777-0778]",
    ]


def test_ping_verbose_and_small_fleets_keep_one_line_per_source():
    sources = fleet({"node0042": "timeout"})
    lines = ping_lines(sources, verbose=True)
    assert len(lines) == 1000
    assert lines[41] == "node0042 tcp://h:41 timeout: timeout message"
    assert lines[0] == "node0001 - ok version=0.4.0 uptime=1.5s"
    small = ping_lines(sources[:HANDFUL])
    assert [line.split()[0] for line in small] == NAMES[:HANDFUL]


# -- --source -----------------------------------------------------------------------------------

def test_source_takes_globs_and_ranges():
    sources = fleet(names=["server_a", *NAMES[:20], "web1", "web2"])
    chosen = _chosen_sources(["node[0005-0007]", "web*"], tuple(sources))
    assert [s.name for s in chosen] == ["node0005", "node0006", "node0007", "web1", "web2"]
    assert _chosen_sources([], tuple(sources)) == tuple(sources)


def test_source_that_chooses_nothing_lists_the_sources_folded():
    sources = tuple(fleet(names=["server_a", *NAMES[:20]]))
    with pytest.raises(UsageError, match=r"--source db\*: no such source here; "
                                         r"the sources are node\[0001-0020\],server_a"):
        _chosen_sources(["node0001", "db*"], sources)
    with pytest.raises(UsageError, match=r"--source: \[3-1\]"):
        _chosen_sources(["node[3-1]"], sources)
    failed = sources[:-1] + (SourceStatus("tcp://h:9", False, error={"code": "timeout",
                                                                       "message": "m"}),)
    assert _chosen_sources(["db*", "node0001"], failed) == sources[1:2]


# -- --compare ----------------------------------------------------------------------------------

class E:
    def __init__(self, name: str, source: str) -> None:
        self.name, self.source = name, source
        self.type, self.size, self.mtime, self.mode = "file", 1, 1.0, 0o100644


def test_compare_names_the_shorter_side_folded():
    entries = ([E("few", n) for n in NAMES[:10]]
               + [E("most", n) for n in NAMES if n not in ("node0042", "node0777")])
    few, most = compare(entries, fleet(), window=1.0)
    assert compareformat.compare_status(few) == "only on node[0001-0010]"
    assert compareformat.compare_status(most) == "missing on node[0042,0777]"


def test_compare_names_failed_sources_as_unknown():
    sources = fleet({"node0500": "timeout"})
    entries = ([E("everywhere", n) for n in NAMES if n != "node0500"]
               + [E("most", n) for n in NAMES[:990] if n != "node0500"])
    everywhere, most = compare(entries, sources, window=1.0)
    assert everywhere.status == "only" and everywhere.unknown == ("node0500",)
    assert compareformat.compare_status(everywhere) == "unknown on node0500"
    assert compareformat.compare_status(most) == "only on node[0001-0499,0501-0990]"  # the shorter


def test_compare_of_a_handful_lists_the_sources_as_before():
    sources = fleet(names=["a", "b", "c"])
    (only,) = compare([E("x", "a"), E("x", "c")], sources, window=1.0)
    assert placement(only) == "only on a, c"
