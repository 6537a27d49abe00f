"""The upstreams file, its reload on SIGHUP, and the manifest of who answered (issue 14)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from conftest import clean_env, make_tree, run_client, wait_until
from fleetsim import FleetSim

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.platform == "win32", reason="SIGHUP"),
]


def sources(endpoint: str, *args: str) -> list:
    proc = run_client("--server", endpoint, "--json", *args)
    assert proc.returncode in (0, 3), proc.stderr_text
    return json.loads(proc.stdout)["sources"]


def test_the_file_names_the_upstreams_and_sighup_rereads_it(cluster, tmp_path):
    with FleetSim(["ok", "ok", "ok", "late"], entries=2, late_delay=3.0) as fleet:
        first, second, third, slow = fleet.nodes
        listed = tmp_path / "upstreams"
        fleet.write_upstreams(str(listed), [first, slow])
        a = cluster.a(make_tree(tmp_path / "a", {"own": ""}), args=["--upstreams-file",
                                                                     str(listed)])
        # The file's names, not the preset's default upstream (tcp://127.0.0.1:5556).
        assert [s["name"] for s in sources(a.endpoint)] == ["server_a", first.name, slow.name]

        waiting = subprocess.Popen(  # in flight to the slow node across the reload
            [sys.executable, "-m", "zdir.client", "--server", a.endpoint, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
        assert wait_until(lambda: fleet.requests[slow.name] == 2, timeout=10)
        fleet.write_upstreams(str(listed), [second, slow, third])
        a.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "SIGHUP: 3 upstreams (2 added, 1 removed)" in a.log(), 10)
        out, err = waiting.communicate(timeout=30)
        assert waiting.returncode == 0, err  # the request to a kept upstream was not dropped
        assert [s["name"] for s in json.loads(out)["sources"]][-1] == slow.name
        assert [s["name"] for s in sources(a.endpoint)] == [
            "server_a", second.name, slow.name, third.name]

        listed.write_text("not-an-endpoint\n")
        a.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "keeping the 3 upstreams in use" in a.log(), 10)
        assert len(sources(a.endpoint)) == 4 and a.proc.poll() is None


def test_a_bad_upstreams_file_stops_the_start(cluster, tmp_path):
    listed = tmp_path / "upstreams"
    listed.write_text("tcp://127.0.0.1:1 one\ntcp://127.0.0.1:1 two\n")
    server = cluster.a(make_tree(tmp_path / "a", {}), args=["--upstreams-file", str(listed)],
                       wait=False)
    assert server.proc.wait(10) == 2
    assert f"{listed}:2" in server.log()


def test_the_manifest_says_who_asked_whom_and_who_is_unheard(cluster, tmp_path):
    """Top in front of two relays; when one relay stops, the sources behind it are counted."""
    with FleetSim(["ok"] * 6, entries=1) as fleet:
        relays = []
        for index in range(2):
            share = tmp_path / f"share{index}"
            fleet.write_upstreams(str(share), fleet.nodes[index * 3:index * 3 + 3])
            relays.append(cluster.a(make_tree(tmp_path / f"r{index}", {}),
                                    args=["--name", f"relay{index}", "--upstreams-file",
                                          str(share)]))
        top = cluster.a(make_tree(tmp_path / "top", {}), *(r.endpoint for r in relays),
                        args=["--name", "top"])
        found = sources(top.endpoint)
        assert len(found) == 9
        by_name = {s["name"]: s for s in found}
        assert by_name["top"]["upstreams"] == 2 and "via" not in by_name["top"]
        assert by_name["relay0"]["via"] == "top" and by_name["relay0"]["upstreams"] == 3
        assert {s["via"] for s in found if s["name"].startswith("node")} == {"relay0", "relay1"}

        relays[1].stop()
        proc = run_client("--server", top.endpoint)
        assert proc.returncode == 3
        doc = sources(top.endpoint)
        (gone,) = [s for s in doc if s["name"] == "relay1"]
        assert gone["behind"] == 4 and gone["error"]["code"] == "unreachable"
        assert "3 sources behind it unheard" in proc.stderr_text, proc.stderr_text
