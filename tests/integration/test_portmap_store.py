"""The port map in the state store (issue 17 part 4), on SQLite and on a REAL PostgreSQL server.

Under AWX the inventory checkout is thrown away after each job: when a store is named
(``--journal``, the module's ``journal``, ``$IPSINFRA_JOURNAL``) the store's
``portmap:<site>`` is the record, and the map file follows it where it can be written.
The last test drives ``ipsinfra portmap`` against the in-process SSH switch netmiko logs into.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ipsinfra.errors import InventoryError
from ipsinfra.lab.switches import IosSwitchServer, IosSwitchState
from ipsinfra.models import SwitchPort
from ipsinfra.network.portmap import PortMap
from ipsinfra.network.portmap_file import map_file_path, read_port_map, sorted_ports, write_port_map
from ipsinfra.network.portmap_store import (
    load_stored_map,
    open_map_store,
    port_map_value,
    read_recorded,
    save_stored_map,
    store_key,
    write_recorded,
)
from ipsinfra.store import Journal
from tests.switchinv import ENV_SECRET, switch_inventory

PASSWORD = "lab-pw-5b1e"
DED1 = "52:54:00:aa:00:01"


def a_map(ded1_port: str = "Gi0/5") -> PortMap:
    """Two switches, one named like a secret key (state values are redacted by key name);
    ports in the map's own order (naturally: Gi0/5 before Gi0/10)."""
    ports = [
        SwitchPort(switch="key-sw1", port=ded1_port, server="ded1", description="ded1", macs=[DED1]),
        SwitchPort(switch="key-sw1", port="Gi0/10", server="kvm1", macs=["52:54:00:00:0A:01"]),
        SwitchPort(switch="key-sw1", port="Gi0/24", uplink=True, description="to core1"),
        SwitchPort(switch="sw2-msk1", port="Et1", server="ded2", macs=["aabb.ccdd.eeff"]),
    ]
    return PortMap(ports=tuple(sorted_ports(PortMap(ports=tuple(ports)))))


def test_the_port_map_round_trips_through_the_store_as_one_chained_line(store_url: str) -> None:
    with Journal(store_url, key=None) as j:
        assert load_stored_map(j, "msk1") is None
        assert save_stored_map(j, a_map(), "msk1") is True
        assert save_stored_map(j, a_map(), "msk1") is False  # unchanged: no second line
        back = load_stored_map(j, "msk1")
        assert back == a_map()
        assert back is not None and [(p.switch, p.port) for p in back.ports] == [
            ("key-sw1", "Gi0/5"),
            ("key-sw1", "Gi0/10"),
            ("key-sw1", "Gi0/24"),
            ("sw2-msk1", "Et1"),
        ]
        assert back.ports[3].macs == ["aa:bb:cc:dd:ee:ff"]
        assert load_stored_map(j, "spb1") is None  # per site
        assert save_stored_map(j, a_map("Gi0/6"), "msk1") is True
        lines = j.entries(action="state.set", target=store_key("msk1"))
        assert [(e.after or {}).get("ports", [{}])[0].get("port") for e in lines] == ["Gi0/5", "Gi0/6"]
        assert [v["site"] for _, v in j.state_history("portmap:msk1")] == ["msk1", "msk1"]
        report = j.verify()
    assert report.ok and report.state_rows_checked == 2, report.problems
    with Journal(store_url, key=None, create=False) as j:  # a new job reads the record back
        assert load_stored_map(j, "msk1") == a_map("Gi0/6")


def test_a_malformed_stored_map_is_named(store_url: str) -> None:
    with Journal(store_url, key=None) as j:
        j.set_state("portmap:msk1", {"site": "msk1", "ports": [{"switch": "sw 1", "port": "Gi0/1"}]})
        with pytest.raises(InventoryError, match=r"state portmap:msk1: ports\[0\].*switch"):
            load_stored_map(j, "msk1")
        j.set_state("portmap:msk1", {"site": "msk1", "switches": {}})
        with pytest.raises(InventoryError, match=r"state portmap:msk1: expected .* a list 'ports'"):
            load_stored_map(j, "msk1")


def test_the_store_is_the_record_and_the_file_follows_it(store_url: str, tmp_path: Path) -> None:
    path = map_file_path(tmp_path, "msk1")
    write_port_map(path, a_map("Gi0/5"), "msk1")  # a git user's file, before the store was used
    store = open_map_store(store_url)
    assert store is not None and store.journal is not None
    try:
        first = read_recorded(path, "msk1", store)
        assert (first.source, first.behind, first.port_map) == ("file", True, a_map("Gi0/5"))
        assert first.note is not None and "no portmap:msk1 in the store" in first.note
        assert "using map file" in first.note

        done = write_recorded(first, first.port_map, store)  # --write with nothing changed: store it
        assert (done.stored, done.file_written, done.file_error) == (True, False, None)
        assert [line.split(" in ")[0] for line in done.lines()] == ["stored portmap:msk1"]
        level = read_recorded(path, "msk1", store)
        assert (level.source, level.note, level.behind) == ("store", None, False)

        path.write_text(path.read_text().replace("Gi0/5:", "Gi0/9:"))  # edited by hand
        assert read_port_map(path) == a_map("Gi0/9")
        disagree = read_recorded(path, "msk1", store)
        assert (disagree.source, disagree.behind, disagree.port_map) == ("store", True, a_map("Gi0/5"))
        assert disagree.note is not None
        assert f"map file {path} differs from the store's portmap:msk1" in disagree.note
        assert "using the store's" in disagree.note
        assert read_recorded(path, "msk1", None).port_map == a_map("Gi0/9")  # no store: the file, as before

        fixed = write_recorded(disagree, disagree.port_map, store)
        assert (fixed.stored, fixed.file_written) == (False, True)
        assert read_port_map(path) == a_map("Gi0/5")

        path.unlink()  # a fresh checkout without the file (AWX)
        fresh = read_recorded(path, "msk1", store)
        assert (fresh.source, fresh.note, fresh.behind) == ("store", None, True)
        path.write_text("site: msk1\nswitches: [broken\n")
        broken = read_recorded(path, "msk1", store)
        assert broken.source == "store" and broken.note is not None and "unreadable" in broken.note
        assert store.journal.verify().ok
    finally:
        store.close()


def test_a_map_file_that_cannot_be_written_leaves_the_store_as_the_record(
    store_url: str, tmp_path: Path
) -> None:
    """Root ignores file modes, so the "read-only checkout" is a path under a regular file."""
    blocker = tmp_path / "inventory"
    blocker.write_text("not a directory\n")
    path = map_file_path(blocker, "msk1")
    store = open_map_store(store_url)
    assert store is not None and store.journal is not None
    try:
        rec = read_recorded(path, "msk1", store)
        assert (rec.source, rec.port_map) == ("none", PortMap())
        done = write_recorded(rec, a_map(), store)
        assert (done.stored, done.file_written, done.written) == (True, False, True)
        assert done.file_error is not None and str(path) in done.file_error
        assert done.lines()[-1].endswith("(the store holds the map)")
        assert load_stored_map(store.journal, "msk1") == a_map()
    finally:
        store.close()
    with pytest.raises(OSError):  # without a store the file is the record: its error stands
        write_recorded(rec, a_map(), None)


def test_which_store_is_named_and_check_mode_creates_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IPSINFRA_JOURNAL", raising=False)
    assert open_map_store(None) is None  # no store named: the file is the record
    url = f"sqlite:///{tmp_path / 'j.sqlite3'}"
    monkeypatch.setenv("IPSINFRA_JOURNAL", url)
    reading = open_map_store(None, create=False)
    assert reading is not None and reading.journal is None and reading.url == url
    assert not (tmp_path / "j.sqlite3").exists()  # --check created nothing
    rec = read_recorded(map_file_path(tmp_path, "msk1"), "msk1", reading)
    assert (rec.source, rec.port_map) == ("none", PortMap())
    writing = open_map_store(None)
    assert writing is not None and writing.journal is not None
    writing.close()
    assert (tmp_path / "j.sqlite3").is_file()
    assert port_map_value(PortMap(), "msk1") == {"site": "msk1", "ports": []}


def test_check_mode_reads_a_store_no_job_wrote_yet_as_empty_and_creates_nothing(store_url: str) -> None:
    """The first AWX job in check mode: no SQLite file, or a PostgreSQL database without tables."""
    reading = open_map_store(store_url, create=False)
    assert reading is not None and reading.journal is None
    assert sa.inspect(sa.create_engine(store_url, poolclass=sa.pool.NullPool)).get_table_names() == []
    writing = open_map_store(store_url)
    assert writing is not None and writing.journal is not None
    writing.close()
    again = open_map_store(store_url, create=False)
    assert again is not None and again.journal is not None
    again.close()


# --- several jobs at once ----------------------------------------------------------------------
PROCESSES, ROUNDS = 4, 6


def _map_writer(url: str, n: int, start: Any) -> None:
    """One job: its own site's map each round, the shared site's every other round, and an action."""
    start.wait(60)
    with Journal(url, key=None) as j:
        for i in range(ROUNDS):
            save_stored_map(j, a_map(f"Gi0/{i + 1}"), f"site{n}")
            if i % 2:
                save_stored_map(j, a_map(f"Gi0/{n + 1}"), "shared")
            j.record("portmap.poll", f"site{n}", after={"round": i})


def test_jobs_in_four_processes_store_their_maps_in_one_chain(store_url: str) -> None:
    """AWX runs jobs side by side: every map and action lands in one intact chain, none lost."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    procs = [ctx.Process(target=_map_writer, args=(store_url, n, start)) for n in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    with Journal(store_url, key=None, create=False) as j:
        report = j.verify()
        for n in range(PROCESSES):
            assert load_stored_map(j, f"site{n}") == a_map(f"Gi0/{ROUNDS}")
            assert len(j.state_history(f"portmap:site{n}")) == ROUNDS
            assert len(j.entries(action="portmap.poll", target=f"site{n}")) == ROUNDS
        assert load_stored_map(j, "shared") in [a_map(f"Gi0/{n + 1}") for n in range(PROCESSES)]
        lines = j.entries(include_state=True)
    assert report.ok, report.problems
    assert [e.seq for e in lines] == list(range(1, len(lines) + 1))
    assert report.state_rows_checked == len([e for e in lines if e.action == "state.set"])


# --- `ipsinfra portmap` against a switch netmiko logs into -------------------------------------
@pytest.fixture
def switch_state() -> IosSwitchState:
    st = IosSwitchState(hostname="sw1-msk1", ports=[f"Gi0/{i}" for i in range(1, 9)] + ["Gi0/24"])
    st.learn(DED1, "Gi0/5")
    st.neighbor("Gi0/24", "core1", "B,R")
    for port in ("Gi0/5", "Gi0/6"):  # described already: only the map is at stake here
        st.port_states[port].description = "ded1"
    return st


@pytest.fixture
def switch(switch_state: IosSwitchState) -> Iterator[IosSwitchServer]:
    with IosSwitchServer(switch_state, username="netops", password=PASSWORD) as srv:
        yield srv


def _inventory(tmp_path: Path, srv: IosSwitchServer, secret: str = ENV_SECRET) -> Path:
    return switch_inventory(
        tmp_path, srv, ded1=f"macs: ['{DED1}']\nswitch: sw1-msk1\nswitch_port: Gi0/5\n", secret=secret
    )


def test_portmap_cli_keeps_the_map_in_the_store(
    store_url: str,
    switch: IosSwitchServer,
    switch_state: IosSwitchState,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ipsinfra.network.cli import app

    inv = _inventory(tmp_path, switch)
    map_file = inv / "switch_ports.msk1.yml"
    monkeypatch.setenv("IPSINFRA_TEST_SW_PW", PASSWORD)
    monkeypatch.delenv("IPSINFRA_JOURNAL", raising=False)
    runner = CliRunner()

    def portmap(*args: str) -> tuple[int, str]:
        done = runner.invoke(app, ["--inventory", str(inv), "--timeout", "10", *args])
        assert PASSWORD not in done.output
        return done.exit_code, done.output

    def stored_port() -> list[str]:
        with Journal(store_url, key=None, create=False) as j:
            stored = load_stored_map(j, "msk1")
        return [p.port for p in (stored.ports if stored else ()) if p.server == "ded1"]

    code, out = portmap("--write", "--journal", store_url)
    assert code == 0, out
    assert "stored portmap:msk1 in " in out and f"wrote {map_file}" in out
    assert stored_port() == ["Gi0/5"] and "Gi0/5:" in map_file.read_text()
    code, out = portmap("--check", "--journal", store_url)
    assert code == 0 and "differs" not in out, out

    map_file.write_text(map_file.read_text().replace("Gi0/5:", "Gi0/9:"))  # a hand edit in git
    code, out = portmap("--check", "--journal", store_url)
    assert code == 1, out  # the file lags the record
    assert "differs from the store's portmap:msk1" in out and "using the store's" in out
    assert "moved" not in out  # compared with the store, which matches the switch
    code, out = portmap("--check")  # no store named: the file is the record, as before
    assert code == 1 and "moved     ded1: sw1-msk1 Gi0/9 -> sw1-msk1 Gi0/5" in out, out

    with Journal(store_url, key=None, create=False) as j:
        lines_before = len(j.entries(include_state=True))
    code, out = portmap("--write", "--journal", store_url)
    assert code == 0 and f"wrote {map_file}" in out and "stored" not in out, out
    assert "Gi0/5:" in map_file.read_text()
    with Journal(store_url, key=None, create=False) as j:
        assert len(j.entries(include_state=True)) == lines_before  # the store was already right

    switch_state.forget(DED1)
    switch_state.learn(DED1, "Gi0/6")
    monkeypatch.setenv("IPSINFRA_JOURNAL", store_url)  # as under AWX: the credential sets it
    code, out = portmap("--write")
    assert code == 0 and "moved     ded1: sw1-msk1 Gi0/5 -> sw1-msk1 Gi0/6" in out, out
    assert stored_port() == ["Gi0/6"] and "Gi0/6:" in map_file.read_text()
    with Journal(store_url, key=None, create=False) as j:
        assert len(j.state_history("portmap:msk1")) == 2
        assert j.verify().ok


@pytest.mark.slow
def test_the_switch_port_map_playbook_keeps_the_map_in_the_store(
    store_url: str, switch: IosSwitchServer, tmp_path: Path
) -> None:
    """Two AWX-like jobs: the first records the map in the store; the second, from a fresh
    checkout without the map file and in check mode, compares with the store's map."""
    from ipsinfra import playbooks

    secret = tmp_path / "sw.pw"
    secret.write_text(PASSWORD + "\n")
    inv = _inventory(tmp_path, switch, secret=f"{{file: {secret}}}")
    map_file = inv / "switch_ports.msk1.yml"

    def job(kept: str, *, check: bool = False) -> dict[str, Any]:
        result = playbooks.run(
            "switch_port_map",
            inv,
            extravars={"portmap_timeout": 10, "ipsinfra_journal": store_url},
            check=check,
            keep_artifacts=tmp_path / kept,
            timeout=180,
        )
        assert result.ok, result.failures
        site: dict[str, Any] = result.data["switch_port_map"]["sites"][0]
        return site

    first = job("a1")
    assert (first["recorded_in"], first["written"], first["stored"]) == ("none", True, True), first
    with Journal(store_url, key=None, create=False) as j:
        stored = load_stored_map(j, "msk1")
    assert stored is not None and [p.port for p in stored.ports if p.server == "ded1"] == ["Gi0/5"]
    assert "Gi0/5:" in map_file.read_text()

    map_file.unlink()  # the next job's checkout has no map file
    second = job("a2", check=True)
    assert second["recorded_in"] == "store" and second["changes"] == [], second
    assert not map_file.exists()  # check mode wrote nothing
