"""The append-only journal (§11.6): round trip, tamper evidence, redaction, concurrency."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.errors import InvalidInput, JournalTampered
from ipsinfra.journal import GENESIS_HASH, Journal, default_journal_url, redact

TARGET = "kvm1/VPS1234(34.56)"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite3")
    yield j
    j.close()


def _fill(j: Journal, n: int = 3) -> None:
    for i in range(1, n + 1):
        j.record("vds.stop", TARGET, before={"state": "running", "i": i}, after={"state": "stopped"})


def test_record_and_entries_round_trip(journal: Journal) -> None:
    first = journal.record(
        "vds.stop",
        TARGET,
        before={"state": "running", "vcpus": 2},
        after={"state": "stopped"},
        detail="§5.2 check",
        actor="alice@desk",
    )
    journal.record("vds.start", "kvm2/VPS1001(78.90)", result="planned")
    got = journal.entries()
    assert [e.seq for e in got] == [1, 2]
    assert got[0] == first
    assert got[0].before == {"state": "running", "vcpus": 2}
    assert got[0].after == {"state": "stopped"}
    assert got[0].actor == "alice@desk"
    assert got[0].detail == "§5.2 check"
    assert got[0].prev_hash == GENESIS_HASH
    assert got[1].prev_hash == got[0].hash
    assert got[1].result == "planned"
    assert "@" in got[1].actor  # the default user@host
    assert got[0].ts.tzinfo is not None
    assert got[0].ts.utcoffset() == dt.timedelta(0)


def test_entries_filters(journal: Journal) -> None:
    journal.record("vds.stop", TARGET)
    journal.record("vds.start", TARGET)
    journal.record("vds.stop", "kvm2/VPS1001(78.90)")
    assert [e.seq for e in journal.entries(target=TARGET)] == [1, 2]
    assert [e.seq for e in journal.entries(action="vds.stop")] == [1, 3]
    assert [e.seq for e in journal.entries(limit=2)] == [2, 3]
    assert journal.entries(since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == []
    assert len(journal.entries(since=dt.datetime(2000, 1, 1))) == 3  # naive = UTC


def test_bad_result_is_refused(journal: Journal) -> None:
    with pytest.raises(InvalidInput, match="result: value 'done'"):
        journal.record("vds.stop", TARGET, result="done")
    assert journal.entries() == []


def test_entries_are_frozen(journal: Journal) -> None:
    entry = journal.record("vds.stop", TARGET)
    with pytest.raises(ValueError):
        entry.result = "failed"  # type: ignore[misc]


def test_verify_ok(journal: Journal) -> None:
    assert journal.verify().ok  # empty journal
    _fill(journal, 5)
    report = journal.verify()
    assert report.ok, report.problems
    assert report.checked == 5
    report.raise_on_error()


def _sql(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(statement)
    db.close()


def test_verify_names_an_edited_line(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        _fill(j, 4)
    _sql(path, "UPDATE journal SET result = 'failed' WHERE seq = 2")
    with Journal(path) as j:
        report = j.verify()
    assert not report.ok
    assert report.checked == 4
    assert len(report.problems) == 1
    assert report.problems[0].startswith("seq 2:")
    assert "edited" in report.problems[0]
    with pytest.raises(JournalTampered, match="seq 2"):
        report.raise_on_error()


def test_verify_names_an_edited_json_field(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        _fill(j, 3)
    _sql(path, """UPDATE journal SET "before" = '{"state":"stopped"}' WHERE seq = 3""")
    with Journal(path) as j:
        problems = j.verify().problems
    assert problems == ["seq 3: content does not match its hash (line edited)"]


@pytest.mark.parametrize("deleted", [1, 3])
def test_verify_names_a_deleted_line(tmp_path: Path, deleted: int) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        _fill(j, 5)
    _sql(path, f"DELETE FROM journal WHERE seq = {deleted}")
    with Journal(path) as j:
        report = j.verify()
    assert not report.ok
    assert report.checked == 4
    assert any(p.startswith(f"seq {deleted}:") and "deleted" in p for p in report.problems), report.problems


def test_verify_names_a_deleted_and_renumbered_line(tmp_path: Path) -> None:
    """Hiding a deletion by renumbering the later lines breaks their hashes and the chain."""
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        _fill(j, 4)
    _sql(path, "DELETE FROM journal WHERE seq = 2")
    _sql(path, "UPDATE journal SET seq = seq - 1 WHERE seq > 2")
    with Journal(path) as j:
        problems = j.verify().problems
    assert any(p.startswith("seq 2:") for p in problems), problems


def test_verify_names_reordered_lines(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        _fill(j, 4)
    # Swap lines 2 and 3 (via a free seq number).
    _sql(path, "UPDATE journal SET seq = 100 WHERE seq = 2")
    _sql(path, "UPDATE journal SET seq = 2 WHERE seq = 3")
    _sql(path, "UPDATE journal SET seq = 3 WHERE seq = 100")
    with Journal(path) as j:
        problems = j.verify().problems
    assert any(p.startswith("seq 2:") for p in problems), problems
    assert any(p.startswith("seq 3:") and "reordered" in p for p in problems), problems


def test_appending_after_verify_keeps_the_chain(journal: Journal) -> None:
    _fill(journal, 2)
    journal.verify()
    entry = journal.record("vds.start", TARGET)
    assert entry.seq == 3
    assert journal.verify().ok


PASSWORD = "Zq8-hunter2-xK41"


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        entry = j.record(
            "vds.reinstall",
            TARGET,
            before={"root_password": PASSWORD, "nested": [{"cipassword": PASSWORD}], "api_token": "t0k"},
            after={"note": f"new password {PASSWORD} sent", "ips": ["203.0.113.7"]},
            detail=f"handed out {PASSWORD} to the client",
            secrets=[PASSWORD],
        )
        j.record("vds.start", TARGET, detail=f"again {PASSWORD}", secrets=[PASSWORD])
        assert j.verify().ok
    assert entry.before == {"root_password": "***", "nested": [{"cipassword": "***"}], "api_token": "***"}
    assert entry.after == {"note": "new password *** sent", "ips": ["203.0.113.7"]}
    assert entry.detail == "handed out *** to the client"
    for file in tmp_path.iterdir():  # the db and any -wal / -journal file
        data = file.read_bytes()
        assert PASSWORD.encode() not in data
        assert b"t0k" not in data


@pytest.mark.parametrize("key", ["password", "PASS", "client_secret", "api_token", "ssh_key", "cipassword"])
def test_secret_looking_keys_are_masked(key: str) -> None:
    assert redact({key: "value", "ok": "value"}) == {key: "***", "ok": "value"}


def test_state_keeps_history(journal: Journal) -> None:
    assert journal.get_state("boot_id/kvm1") is None
    journal.set_state("boot_id/kvm1", {"boot_id": "aaa"})
    journal.set_state("boot_id/kvm1", {"boot_id": "bbb"})
    assert journal.get_state("boot_id/kvm1") == {"boot_id": "bbb"}
    assert [v for _, v in journal.state_history("boot_id/kvm1")] == [{"boot_id": "aaa"}, {"boot_id": "bbb"}]
    report = journal.verify()  # each state write is a state.set line of the chain, hidden from entries()
    assert report.ok and report.checked == 2 and report.state_rows_checked == 2
    assert journal.entries() == []


def test_latest_states_reads_a_prefix_at_once(journal: Journal) -> None:
    journal.set_state("vds:VPS1(1.1)", {"blocked": False})
    journal.set_state("vds:VPS1(1.1)", {"blocked": True})
    journal.set_state("vds:VPS2(1.1)", {"trial_end": "2026-12-03"})
    journal.set_state("vdsx:VPS3(1.1)", {"other": 1})  # shares "vds" but not "vds:"
    journal.set_state("boot:kvm1", {"boot_id": "aaa"})
    journal.set_state("100%_:k", {"x": 1})
    journal.set_state("100a_:k", {"x": 2})  # LIKE wildcards in the prefix are literal
    assert journal.latest_states("vds:") == {
        "vds:VPS1(1.1)": {"blocked": True},
        "vds:VPS2(1.1)": {"trial_end": "2026-12-03"},
    }
    assert journal.latest_states("100%_") == {"100%_:k": {"x": 1}}
    assert journal.latest_states("nothing:") == {}
    for key in ("vds:VPS1(1.1)", "vds:VPS2(1.1)", "boot:kvm1"):
        assert journal.latest_states(key.split(":")[0] + ":")[key] == journal.get_state(key)


def test_default_url_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IPSINFRA_JOURNAL", str(tmp_path / "sub" / "j.sqlite3"))
    assert default_journal_url() == f"sqlite:///{tmp_path / 'sub' / 'j.sqlite3'}"
    with Journal() as j:
        j.record("vds.stop", TARGET)
    assert (tmp_path / "sub" / "j.sqlite3").exists()
    monkeypatch.setenv("IPSINFRA_JOURNAL", "sqlite:///" + str(tmp_path / "u.sqlite3"))
    assert default_journal_url() == "sqlite:///" + str(tmp_path / "u.sqlite3")


def test_two_threads_append_50_lines_each(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with Journal(path) as j:  # each thread its own engine, like two processes
                for i in range(50):
                    j.record("vds.stop", f"{name}/{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Journal(path) as j:
        report = j.verify()
        assert report.ok, report.problems
        assert report.checked == 100
        assert [e.seq for e in j.entries()] == list(range(1, 101))


def test_shared_journal_across_threads(journal: Journal) -> None:
    threads = [
        threading.Thread(target=lambda n=n: [journal.record("x.y", f"t{n}/{i}") for i in range(25)])
        for n in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = journal.verify()
    assert report.ok and report.checked == 100


WRITER = """
import sys
from ipsinfra.journal import Journal
with Journal(sys.argv[1]) as j:
    for i in range(50):
        j.record("vds.stop", f"{sys.argv[2]}/{i}")
"""


def test_two_processes_append_50_lines_each(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"p{n}"], stderr=subprocess.PIPE)
        for n in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with Journal(path) as j:
        report = j.verify()
        assert report.ok, report.problems
        assert report.checked == 100
        assert {e.target.split("/")[0] for e in j.entries()} == {"p0", "p1"}
