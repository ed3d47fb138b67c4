"""The journal you can anchor (#18 part 6): head anchors, the HMAC key, the chained state table,
older journals migrated without rewriting a line (§11.6), unreadable journals as clear errors."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ipsinfra.errors import InvalidInput, NotFound
from ipsinfra.journal import (
    GENESIS_HASH,
    Anchor,
    Journal,
    JournalNotFound,
    JournalUnreadable,
    _canonical,
    _hashed_bytes,
    _row_hash,
    _row_mac,
    load_key,
    parse_anchor,
)
from tests.unit.journal_tamper import (
    KEY,
    delete_middle_and_rehash,
    edit_and_rehash,
    edit_state_and_rehash,
    empty_table,
    journal_rows,
    rehash_from,
    sql,
    truncate_tail,
)

TARGET = "kvm1/VPS1234(34.56)"

# --- the canonical form is pinned (issue 23) ------------------------------------------------
GOLDEN_FIELDS = {
    "seq": 1,
    "ts": "2026-12-06T12:00:00.000000+00:00",
    "actor": "оператор@узел-1",
    "action": "vds.stop",
    "target": TARGET,
    "before": {"état": "running", "z": 1, "ключ": ["ü", "日本"]},
    "after": None,
    "result": "ok",
    "detail": "Остановлен по §5.2 — «жалоба»",
    "prev_hash": GENESIS_HASH,
}
GOLDEN_TEXT = (
    GENESIS_HASH + '{"action":"vds.stop","actor":"оператор@узел-1","after":null,'
    '"before":{"z":1,"état":"running","ключ":["ü","日本"]},"detail":"Остановлен по §5.2 — «жалоба»",'
    f'"prev_hash":"{GENESIS_HASH}","result":"ok","seq":1,"target":"kvm1/VPS1234(34.56)",'
    '"ts":"2026-12-06T12:00:00.000000+00:00"}'
)
GOLDEN_HASH = "9b168dbc85790a751063e3d408373e32ede03b4d7c76a6b8d1ad6d61aaba0442"
GOLDEN_MAC = "5284d13e2ee67f8b9eff1994b6408332466b74952fd9fe0571d6b4974a516fde"  # under KEY


def test_canonical_form_and_hash_are_pinned() -> None:
    """A change of ensure_ascii, separators or key order changes every hash ever written: caught here."""
    assert _hashed_bytes(GOLDEN_FIELDS) == GOLDEN_TEXT.encode("utf-8")
    assert hashlib.sha256(GOLDEN_TEXT.encode("utf-8")).hexdigest() == GOLDEN_HASH
    assert _row_hash(GOLDEN_FIELDS) == GOLDEN_HASH
    assert _row_mac(KEY, GOLDEN_FIELDS) == GOLDEN_MAC
    assert _canonical({"é": 1}) == '{"é":1}'  # UTF-8 as is, not \\u00e9


def test_a_stored_golden_line_verifies(tmp_path: Path) -> None:
    """verify hashes exactly the pinned form of a line read back from the database."""
    path = tmp_path / "j.sqlite3"
    Journal(path).close()
    row = {
        **GOLDEN_FIELDS,
        "before": _canonical(GOLDEN_FIELDS["before"]),
        "hash": GOLDEN_HASH,
        "mac": GOLDEN_MAC,
    }
    cols = ", ".join(f'"{c}"' for c in row)
    sql(
        path, f"INSERT INTO journal ({cols}) VALUES ({', '.join('?' * len(row))})", params=tuple(row.values())
    )
    with Journal(path, key=KEY) as j:
        report = j.verify(f"1:{GOLDEN_HASH}")
    assert report.ok, report.problems
    assert report.macs_checked == 1


# --- the anchor ----------------------------------------------------------------------------
def _fill(path: Path, n: int = 5, *, key: bytes | None = KEY) -> Anchor:
    with Journal(path, key=key) as j:
        for i in range(1, n + 1):
            j.record("vds.stop", TARGET, before={"state": "running", "i": i}, after={"state": "stopped"})
        j.set_state("boot:kvm1", {"boot_id": "aaa"})
        j.set_state("boot:kvm1", {"boot_id": "bbb"})
        j.record("vds.start", TARGET)
        return j.head()


def test_head(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        assert j.head() == Anchor(seq=0, hash=GENESIS_HASH)
        last = j.record("vds.stop", TARGET)
        assert j.head() == Anchor(seq=1, hash=last.hash)
        assert str(j.head()) == f"1:{last.hash}"
        assert parse_anchor(str(j.head())) == j.head()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5",
        "5:",
        f"x:{GENESIS_HASH}",
        f"-1:{GENESIS_HASH}",
        "3:abc",
        f"3:{'A' * 64}",
        f"0:{'1' * 64}",
    ],
)
def test_bad_anchor_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="expect_head"):
        parse_anchor(text)


def test_anchor_of_an_intact_journal_and_of_a_grown_one(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    anchor = _fill(path)
    with Journal(path, key=KEY) as j:
        assert j.verify(anchor).ok
        assert j.verify(Anchor(seq=0, hash=GENESIS_HASH)).ok
        j.record("vds.stop", TARGET)  # the journal grows past the anchor: still fine
        report = j.verify(anchor)
    assert report.ok, report.problems
    assert report.head.seq == anchor.seq + 1


TamperCase = tuple[Callable[[Path], None], str]
ANCHOR_CASES: dict[str, TamperCase] = {
    "truncate tail": (truncate_tail, "tail truncated"),
    "empty table": (empty_table, "table emptied"),
    "edit and rehash": (edit_and_rehash, "chain rewritten"),
    "delete middle, renumber, rehash": (delete_middle_and_rehash, "tail truncated"),
    "edit state row and its line, rehash": (
        lambda p: edit_state_and_rehash(p, "boot:kvm1"),
        "chain rewritten",
    ),
}


@pytest.mark.parametrize("case", list(ANCHOR_CASES))
def test_tampering_the_chain_alone_misses_is_caught_by_the_anchor(tmp_path: Path, case: str) -> None:
    path = tmp_path / "j.sqlite3"
    anchor = _fill(path)
    tamper, needle = ANCHOR_CASES[case]
    tamper(path)
    with Journal(path, key=None) as j:
        assert j.verify().ok, "the chain alone should not see this (else the case tests nothing new)"
        report = j.verify(anchor)
    assert not report.ok
    assert any(needle in p for p in report.problems), report.problems


KEY_CASES: dict[str, Callable[[Path], None]] = {
    "edit and rehash": edit_and_rehash,
    "delete middle, renumber, rehash": delete_middle_and_rehash,
    "edit state row and its line, rehash": lambda p: edit_state_and_rehash(p, "boot:kvm1"),
}


@pytest.mark.parametrize("case", list(KEY_CASES))
def test_tampering_is_caught_by_the_key_without_an_anchor(tmp_path: Path, case: str) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    KEY_CASES[case](path)
    with Journal(path, key=KEY) as j:
        report = j.verify()
    assert not report.ok
    assert any("MAC does not match" in p for p in report.problems), report.problems


def test_a_keyed_journal_verifies_with_its_key_only(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    with Journal(path, key=KEY) as j:
        report = j.verify()
    assert report.ok, report.problems
    assert report.macs_checked == report.checked == 8
    with Journal(path, key=b"another key, 32 bytes long......") as j:
        assert j.verify().problems == [
            "no MAC matches the key (8 lines): a different key, or every keyed line forged"
        ]
    with Journal(path, key=None) as j:
        report = j.verify()
    assert report.ok
    assert report.notes and "carry a MAC, not checked" in report.notes[0]


def test_a_garbage_mac_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path, 2)
    sql(path, "UPDATE journal SET mac = 'ü' WHERE seq = 2")
    with Journal(path, key=KEY) as j:
        assert j.verify().problems == [
            "seq 2: MAC does not match (line forged, or rewritten without the key)"
        ]


def test_stripping_every_mac_and_rewriting_is_caught_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path)
    sql(path, "UPDATE journal SET mac = NULL", "UPDATE journal SET detail = 'forged' WHERE seq = 1")
    rehash_from(path, 1)
    with Journal(path, key=KEY) as j:
        assert j.verify().problems == [
            "no line carries a MAC: the key was never used to write this journal, or every MAC was removed"
        ]


def test_a_line_written_without_the_key_after_keyed_ones_is_named(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path, 2)
    with Journal(path, key=None) as j:
        j.record("vds.stop", TARGET)
    with Journal(path, key=KEY) as j:
        assert j.verify().problems == [
            "seq 6: no MAC after keyed lines (written without the key, or its MAC removed)"
        ]


def test_lines_from_before_the_key_are_covered_by_the_first_mac(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path, 2, key=None)  # seq 1-5 without a key
    with Journal(path, key=KEY) as j:
        j.record("vds.stop", TARGET)  # seq 6, keyed: its MAC signs seq 5's hash
        report = j.verify()
    assert report.ok, report.problems
    assert report.notes == [
        "seq 1-5: written before the key was used; covered by seq 6's MAC, which signs their hashes"
    ]
    edit_and_rehash(path, 2)
    with Journal(path, key=KEY) as j:
        assert "seq 6: MAC does not match" in j.verify().problems[0]


# --- the state table is covered -------------------------------------------------------------
def test_state_writes_are_chained_lines_hidden_from_entries(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path, key=None) as j:
        j.set_state("outage:kvm1", {"status": "open"})
        j.set_states({"boot:kvm1": {"boot_id": "a"}, "ran:kvm1": {"running": []}})
        assert j.entries() == []
        lines = j.entries(include_state=True)
        assert [(e.seq, e.action, e.target, e.after) for e in lines] == [
            (1, "state.set", "outage:kvm1", {"status": "open"}),
            (2, "state.set", "boot:kvm1", {"boot_id": "a"}),
            (3, "state.set", "ran:kvm1", {"running": []}),
        ]
        assert j.entries(action="state.set") == lines
        report = j.verify()
    assert report.ok and report.state_rows_checked == 3
    db = sqlite3.connect(path)
    assert db.execute("SELECT key, seq FROM journal_state ORDER BY id").fetchall() == [
        ("outage:kvm1", 1),
        ("boot:kvm1", 2),
        ("ran:kvm1", 3),
    ]
    db.close()


STATE_CASES = {
    "edited": (
        """UPDATE journal_state SET value = '{"status":"resolved"}' WHERE id = 2""",
        "state row 2 (outage:kvm1): differs from its chained line seq 3 (row edited)",
    ),
    "deleted": ("DELETE FROM journal_state WHERE id = 2", "seq 3: the state row this line wrote is missing"),
    "inserted unchained": (
        """INSERT INTO journal_state (key, ts, value) VALUES ('outage:kvm1', 'x', '{}')""",
        "state row 4 (outage:kvm1): not in the chain (row inserted)",
    ),
    "old value replayed": (
        "INSERT INTO journal_state (key, ts, value, seq) "
        "SELECT key, ts, value, seq FROM journal_state WHERE id = 1",
        "state row 4 (outage:kvm1): names seq 1 like state row 1 (row copied)",
    ),
    "pointed at another line": (
        "UPDATE journal_state SET seq = 2 WHERE id = 2",
        "state row 2 (outage:kvm1): seq 2 is not a state line of the chain (row forged)",
    ),
}


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_a_tampered_state_row_is_named(tmp_path: Path, case: str) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path, key=None) as j:
        j.set_state("outage:kvm1", {"status": "open"})  # seq 1, row 1
        j.record("vds.stop", TARGET)  # seq 2
        j.set_state("outage:kvm1", {"status": "open", "notified": {"c": ["x"]}})  # seq 3, row 2
        j.set_state("boot:kvm1", {"boot_id": "a"})  # seq 4, row 3
        assert j.verify().ok
    statement, needle = STATE_CASES[case]
    sql(path, statement)
    with Journal(path, key=None) as j:
        problems = j.verify().problems
    assert any(needle in p for p in problems), problems


# --- older journals: migrated without rewriting a line (§11.6) ------------------------------
OLD_SCHEMA = (
    "CREATE TABLE journal (seq INTEGER NOT NULL, ts VARCHAR(40) NOT NULL, actor VARCHAR(255) NOT NULL, "
    'action VARCHAR(255) NOT NULL, target TEXT NOT NULL, "before" TEXT, "after" TEXT, '
    "result VARCHAR(16) NOT NULL, detail TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL, "
    "hash VARCHAR(64) NOT NULL, PRIMARY KEY (seq), UNIQUE (hash))",
    'CREATE TABLE journal_state (id INTEGER NOT NULL, "key" VARCHAR(255) NOT NULL, ts VARCHAR(40) NOT NULL, '
    "value TEXT NOT NULL, PRIMARY KEY (id))",
)


def _old_journal(path: Path) -> None:
    """A journal as the previous release wrote it: no mac column, state rows not chained."""
    sql(path, *OLD_SCHEMA)
    prev = GENESIS_HASH
    for seq in (1, 2, 3):
        fields = {**GOLDEN_FIELDS, "seq": seq, "detail": f"line {seq}", "prev_hash": prev}
        prev = _row_hash(fields)
        row = {**fields, "before": _canonical(fields["before"]), "hash": prev}
        cols = ", ".join(f'"{c}"' for c in row)
        sql(
            path,
            f"INSERT INTO journal ({cols}) VALUES ({', '.join('?' * len(row))})",
            params=tuple(row.values()),
        )
    sql(
        path,
        "INSERT INTO journal_state (key, ts, value) "
        """VALUES ('boot:kvm1', '2026-12-01T00:00:00+00:00', '{"boot_id":"a"}')""",
        "INSERT INTO journal_state (key, ts, value) "
        """VALUES ('outage:kvm1', '2026-12-02T00:00:00+00:00', '{"status":"open"}')""",
    )


def _dump(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    lines = db.execute(
        "SELECT seq, ts, actor, action, target, before, after, result, detail, prev_hash, hash "
        "FROM journal WHERE seq <= 3"
    ).fetchall()
    states = db.execute("SELECT id, key, ts, value FROM journal_state WHERE id <= 2").fetchall()
    db.close()
    return lines, states


def test_reading_an_old_journal_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _old_journal(path)
    before = path.read_bytes()
    with Journal(path, create=False, key=KEY) as j:
        report = j.verify()
        assert [e.detail for e in j.entries()] == ["line 1", "line 2", "line 3"]
        assert j.get_state("boot:kvm1") == {"boot_id": "a"}
    # with a key but no MAC anywhere: said plainly, not passed as intact
    assert report.problems == [
        "no line carries a MAC: the key was never used to write this journal, or every MAC was removed"
    ]
    with Journal(path, create=False, key=None) as j:
        report = j.verify()
    assert report.ok, report.problems
    assert "2 state row(s) from before the state was chained" in report.notes[0]
    assert path.read_bytes() == before


def test_opening_an_old_journal_to_write_adds_columns_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _old_journal(path)
    old = _dump(path)
    with Journal(path, key=KEY) as j:
        j.set_state("boot:kvm1", {"boot_id": "b"})
        report = j.verify()
        migrate = j.entries(action="journal.migrate")
    assert report.ok, report.problems
    assert _dump(path) == old  # no line and no state row rewritten (§11.6)
    assert [(e.seq, e.after["legacy_state_rows"]) for e in migrate] == [(4, 2)]  # type: ignore[index]
    assert report.notes == [
        "seq 1-3: written before the key was used; covered by seq 4's MAC, which signs their hashes"
    ]
    assert [r["mac"] is None for r in journal_rows(path)] == [True, True, True, False, False]
    # the state rows from before the chain are covered by the migration's digest
    sql(path, """UPDATE journal_state SET value = '{"boot_id":"z"}' WHERE id = 1""")
    with Journal(path, key=KEY) as j:
        problems = j.verify().problems
    assert problems == [
        "state rows from before the chain: 2 now, not the 2 seq 4 recorded (rows edited, added or deleted)"
    ]


# --- unreadable journals: clear errors, nothing created ------------------------------------
def test_a_missing_journal_is_not_created_by_reading(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such.sqlite3"
    with pytest.raises(JournalNotFound, match="no such file") as info:
        Journal(missing, create=False)
    assert isinstance(info.value, NotFound)
    assert not missing.parent.exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"not a database, just text" * 100, "cannot open"), (b"", "no journal table")],
)
def test_a_file_that_is_not_a_journal(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "x.sqlite3"
    path.write_bytes(content)
    with pytest.raises(JournalUnreadable, match=needle):
        Journal(path, create=False)
    assert path.read_bytes() == content


def test_a_malformed_line_is_journal_unreadable_naming_its_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    _fill(path, 3)
    sql(path, """UPDATE journal SET "before" = '{not json' WHERE seq = 2""")
    with Journal(path, create=False) as j:
        with pytest.raises(JournalUnreadable, match=r"seq 2: malformed line \(a JSON column is not JSON\)"):
            j.entries()
        assert j.verify().problems == ["seq 2: content does not match its hash (line edited)"]
    sql(path, """UPDATE journal SET "before" = NULL, ts = 'yesterday' WHERE seq = 2""")
    with (
        Journal(path, create=False) as j,
        pytest.raises(JournalUnreadable, match=r"seq 2: malformed line \(ts\)"),
    ):
        j.entries()
    sql(path, """UPDATE journal_state SET value = 'nope' WHERE id = 1""")
    with Journal(path, create=False) as j, pytest.raises(JournalUnreadable, match="state 'boot:kvm1'"):
        j.state_history("boot:kvm1")


# --- the key: from the environment or a file, never from argv -------------------------------
def test_load_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IPSINFRA_JOURNAL_KEY", raising=False)
    monkeypatch.delenv("IPSINFRA_JOURNAL_KEY_FILE", raising=False)
    assert load_key() is None
    monkeypatch.setenv("IPSINFRA_JOURNAL_KEY", "e" * 20)
    assert load_key() == b"e" * 20
    keyfile = tmp_path / "key"
    keyfile.write_bytes(b"f" * 32 + b"\n")
    monkeypatch.setenv("IPSINFRA_JOURNAL_KEY_FILE", str(keyfile))
    assert load_key() == b"f" * 32  # the file wins, without its newline
    assert load_key(keyfile) == b"f" * 32
    with pytest.raises(InvalidInput, match="cannot read"):
        load_key(tmp_path / "missing")
    keyfile.write_text("short-secret\n")
    with pytest.raises(InvalidInput, match="shorter than 16 bytes") as info:
        load_key()
    assert "short-secret" not in str(info.value)


def test_the_journal_takes_its_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("IPSINFRA_JOURNAL_KEY_FILE", raising=False)
    monkeypatch.setenv("IPSINFRA_JOURNAL_KEY", KEY.decode())
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        line = j.record("vds.stop", TARGET)
        assert j.key == KEY
    assert line.mac is not None
    assert [r["mac"] for r in journal_rows(path)] == [line.mac]


def test_state_writes_and_lines_interleave_from_two_threads(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    errors: list[BaseException] = []

    def worker(kind: str) -> None:
        try:
            with Journal(path, key=KEY) as j:
                for i in range(30):
                    if kind == "state":
                        j.set_states({f"boot:kvm{i}": {"boot_id": str(i)}, f"ran:kvm{i}": {"running": []}})
                    else:
                        j.record("vds.stop", f"kvm1/{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(kind,)) for kind in ("state", "line")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Journal(path, key=KEY) as j:
        report = j.verify()
    assert report.ok, report.problems
    assert (report.checked, report.state_rows_checked, report.macs_checked) == (90, 60, 90)
