"""The benchmarks' own checks: a row whose two sides did different work must FAIL.

Pure where it can be (``bench.core``'s work comparison, the PLAY RECAP and MAC
normalisation the rows feed it); the Proxmox call counter is checked on a real
``requests`` session against a loopback HTTP server, as B3 uses it on
proxmoxer's session.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench.__main__ as bench_main
import pytest
import requests
from bench.b1_b2_ansible import ok_tasks, recap
from bench.b3_inventory import HttpCalls
from bench.b4_audit import ProbeListener
from bench.b5_switches import mac_item
from bench.core import (
    Row,
    WorkLog,
    check_work,
    compare_work,
    counted_runs,
    expect_work,
    interleave_work,
    row,
    table,
    work,
)

from ipsinfra.audit.run import tcp_probe_many


def speedup_row(base: float = 10.0, ours: float = 1.0) -> Row:
    return row("B9.demo", "demo", [base], [ours], kind="speedup", limit=8.0, baseline="naive")


def test_same_work_passes_and_says_how_much() -> None:
    names = [f"VPS{i}(0.1)" for i in range(50)]
    check = compare_work("VDS listed", [work(names)], [work(reversed(names))], expected=50)
    assert check["same"] and check["baseline_counts"] == check["ipsinfra_counts"] == [50]
    r = check_work(speedup_row(), check)
    assert r.passed and r.work_same
    assert "VDS listed: baseline 50, ipsinfra 50" in r.notes


def test_a_faster_side_that_did_less_work_fails_with_the_numbers() -> None:
    base = [f"sw{s} 5254000000{m:02x} Gi1/0/1" for s in (1, 2) for m in range(10)]
    ours = base[:10]  # collect failed on sw2: half the work, much faster
    r = check_work(
        speedup_row(base=20.0, ours=1.0),
        compare_work("MACs collected", [work(base)], [work(ours)], expected=20),
    )
    assert r.ratio == 20.0 and not r.passed and not r.work_same
    assert r.notes.startswith("WORK DIFFERS, MACs collected: run 1: baseline 20, ipsinfra 10")
    assert "sw2 525400000000 Gi1/0/1" in r.notes  # names what only one side did
    assert "FAIL: work differs" in table([r])


def test_same_count_different_items_fails() -> None:
    check = compare_work("VDS listed", [work(["a", "b"])], [work(["a", "c"])], expected=2)
    assert not check["same"]
    assert "only baseline: ['b']; only ipsinfra: ['c']" in check["message"]


def test_both_sides_short_of_the_fleet_fails() -> None:
    same_loss = [work(["a", "b"])]
    check = compare_work("VDS listed", same_loss, same_loss, expected=3)
    assert not check["same"]
    assert "baseline counted [2], the fleet has 3" in check["message"]
    assert "ipsinfra counted [2], the fleet has 3" in check["message"]


def test_runs_are_compared_pairwise() -> None:
    base, ours = WorkLog(), WorkLog()
    for items in (["a", "b"], ["a", "b"], ["a", "b"]):
        base.add(items)
    for items in (["a", "b"], ["a"], ["a", "b"]):  # the second repetition lost one
        ours.add(items)
    assert base.runs[1].items is None and ours.runs[1].items == ("a",)  # kept once per outcome
    check = compare_work("VDS listed", base.runs, ours.runs)
    assert not check["same"] and check["ipsinfra_counts"] == [2, 1, 2]
    assert "run 2: baseline 2, ipsinfra 1" in check["message"] and "run 1" not in check["message"]


def test_no_runs_is_not_the_same() -> None:
    assert not compare_work("VDS listed", [], [])["same"]
    assert not expect_work("VDS listed", [], 10)["same"]


def test_expect_work_checks_one_side_against_the_fleet() -> None:
    assert expect_work("VDS listed", [work(["a"] * 4)], 4)["same"]
    short = expect_work("VDS listed", [work(["a"] * 4), work(["a"] * 3)], 4)
    assert not short["same"] and "counted [4, 3], the fleet has 4" in short["message"]


def test_interleave_work_keeps_every_runs_work() -> None:
    calls = {"base": 0, "ours": 0}

    def base() -> list[str]:
        calls["base"] += 1
        return ["x", "y"]

    def ours() -> list[str]:
        calls["ours"] += 1
        return ["x"] if calls["ours"] == 2 else ["x", "y"]

    b, o, bw, ow = interleave_work(base, ours, 3, lambda items: items, warmup=False)
    assert len(b) == len(o) == 3 and all(t >= 0 for t in b + o)
    assert [w.count for w in bw.runs] == [2, 2, 2] and [w.count for w in ow.runs] == [2, 1, 2]
    assert not compare_work("items", bw.runs, ow.runs)["same"]


def test_counted_runs_records_each_calls_growth() -> None:
    counter = [0]

    def fn() -> str:
        counter[0] += 3
        return "done"

    wrapped, per_run = counted_runs(fn, lambda: counter[0])
    assert wrapped() == "done" and wrapped() == "done"
    assert per_run == [(3,), (3,)]


def test_play_recap_is_read_back() -> None:
    out = """PLAY [One task] ****

TASK [Run true] ****
ok: [h1]
ok: [h2]

PLAY RECAP *********************************************************************
h1                         : ok=1    changed=0    unreachable=0    failed=0    skipped=0
h2                         : ok=0    changed=0    unreachable=1    failed=0    skipped=0
"""
    assert recap(out) == {"h1": 1, "h2": 0}
    assert ok_tasks({"h1": 2, "h2": 0}) == ["h1 ok 1", "h1 ok 2"]
    with pytest.raises(RuntimeError, match="no PLAY RECAP"):
        recap("ERROR! the playbook could not be found")


def test_mac_items_compare_equal_across_notations() -> None:
    # netmiko's TextFSM record keeps Cisco's dotted form; collect normalises to colons.
    assert mac_item("sw1", "5254.0001.00ff", "Gi1/0/1") == mac_item("sw1", "52:54:00:01:00:FF", "Gi1/0/1")


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"data": []}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Api:
    """Where proxmoxer keeps its session: ``ProxmoxAPI._store["session"]``."""

    def __init__(self, session: requests.Session) -> None:
        self._store = {"session": session}


def test_http_calls_count_what_the_session_really_sends(http_server: str) -> None:
    session = requests.Session()
    calls = HttpCalls()
    calls.attach(_Api(session))

    def listing() -> None:
        session.get(f"{http_server}/api2/json/nodes/pve1/qemu")
        session.get(f"{http_server}/api2/json/nodes/pve1/qemu/100/config")
        session.get(f"{http_server}/api2/json/nodes/pve2/qemu")
        session.get(f"{http_server}/api2/json/cluster/resources")

    assert calls.during(listing) == {"pve1": 2, "pve2": 1, "cluster": 1}
    assert calls.during(lambda: None) == {}  # cleared between counted runs
    session.close()


def test_probe_listener_counts_the_connections_that_arrive() -> None:
    with ProbeListener(ports=3) as listener:
        assert len(set(listener.targets)) == 3
        assert listener.accepted() == 0
        answers = tcp_probe_many(listener.targets, 5.0)
        assert answers == dict.fromkeys(listener.targets)
        assert listener.accepted() == 3
        tcp_probe_many(listener.targets[:1] * 4, 5.0)  # one target: one connect, however often listed
        assert listener.accepted() == 4


def test_a_run_with_different_work_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_run(plan: object, only: set[str], checkpoint: Any) -> tuple[list[Row], list[dict[str, str]]]:
        r = check_work(speedup_row(), compare_work("VDS listed", [work(["a", "b"])], [work(["a"])]))
        return [r], []

    monkeypatch.setattr(bench_main, "run", fake_run)
    out = tmp_path / "run.json"
    assert bench_main.main(["--only", "B3", "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "WORK DIFFERS B9.demo: WORK DIFFERS, VDS listed: run 1: baseline 2, ipsinfra 1" in printed
    saved = json.loads(out.read_text())
    assert saved["results"][0]["work_same"] is False and saved["results"][0]["passed"] is False
    assert saved["meta"]["git"]["commit"]
