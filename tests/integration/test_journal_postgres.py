"""The state store on both backends (issue 17 part 4): the journal, its anchor/HMAC/state
chain, the migration of older journals and the audit's state, each scenario on SQLite and
on a REAL PostgreSQL server (tests/pg.py), plus what only a server has: writers in several
processes at once, a password from a file, an unreachable server.

The tampering is done with plain SQL through SQLAlchemy, as someone who can write the
database (and knows its format) would, so the same statements run on both backends.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ipsinfra.errors import InvalidInput, JournalError
from ipsinfra.journal import (
    _PG_CHAIN_LOCK,
    GENESIS_HASH,
    PASSWORD_FILE_ENV,
    Anchor,
    Journal,
    JournalUnreadable,
    _canonical,
    _hash_fields,
    _row_hash,
    safe_url,
    url_secrets,
)
from tests.integration.test_audit_ran_before_reboot import TwoNodes, by_check
from tests.pg import SECRET, SECRET_USER, SUPERUSER, PostgresCluster
from tests.unit.journal_tamper import KEY

TARGET = "kvm1/VPS1234(34.56)"
PASSWORD = "Zq8-hunter2-xK41"


class Store:
    """One empty journal database on one backend, and raw SQL on it."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url

    def journal(self, **kw: Any) -> Journal:
        kw.setdefault("key", None)
        return Journal(self.url, **kw)

    def _engine(self) -> sa.Engine:
        return sa.create_engine(self.url, poolclass=sa.pool.NullPool)

    def sql(self, *statements: str, **params: Any) -> None:
        engine = self._engine()
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(sa.text(statement), params)
        finally:
            engine.dispose()

    def rows(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        engine = self._engine()
        try:
            with engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(sa.text(statement), params)]
        finally:
            engine.dispose()

    # --- what someone who can write the database does ----------------------------
    def rehash_from(self, first: int) -> None:
        """Recompute prev_hash and hash from seq ``first`` on (what the chain alone cannot see)."""
        prev = GENESIS_HASH
        updates = []
        for row in self.rows("SELECT * FROM journal ORDER BY seq"):
            if row["seq"] >= first:
                row["prev_hash"] = prev
                row["hash"] = _row_hash(_hash_fields(row))
                updates.append({"p": row["prev_hash"], "h": row["hash"], "s": row["seq"]})
            prev = row["hash"]
        engine = self._engine()
        try:
            with engine.begin() as conn:
                for u in updates:  # one by one: hash is UNIQUE, and no two lines share one
                    conn.execute(sa.text("UPDATE journal SET prev_hash = :p, hash = :h WHERE seq = :s"), u)
        finally:
            engine.dispose()

    def truncate_tail(self) -> None:
        self.sql(
            "DELETE FROM journal WHERE seq > (SELECT MAX(seq) - 2 FROM journal)",
            "DELETE FROM journal_state WHERE seq > (SELECT MAX(seq) FROM journal)",
        )

    def empty_table(self) -> None:
        self.sql("DELETE FROM journal", "DELETE FROM journal_state")

    def edit_and_rehash(self, seq: int = 2) -> None:
        self.sql("UPDATE journal SET detail = 'nothing happened', result = 'refused' WHERE seq = :s", s=seq)
        self.rehash_from(seq)

    def delete_middle_and_rehash(self, seq: int = 2) -> None:
        # Renumbered in two steps: PostgreSQL checks the primary key row by row.
        self.sql(
            "DELETE FROM journal WHERE seq = :s",
            "UPDATE journal SET seq = -seq WHERE seq > :s",
            "UPDATE journal SET seq = -seq - 1 WHERE seq < 0",
            "UPDATE journal_state SET seq = seq - 1 WHERE seq > :s",
            s=seq,
        )
        self.rehash_from(seq)

    def edit_state_and_rehash(self, key: str = "boot:kvm1") -> None:
        new = '{"boot_id":"forged"}'
        row = self.rows("SELECT id, seq FROM journal_state WHERE key = :k ORDER BY id DESC", k=key)[0]
        self.sql(
            "UPDATE journal_state SET value = :v WHERE id = :i",
            'UPDATE journal SET "after" = :v WHERE seq = :s',
            v=new,
            i=row["id"],
            s=row["seq"],
        )
        self.rehash_from(row["seq"])


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store("sqlite", f"sqlite:///{tmp_path / 'j.sqlite3'}")
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return Store("postgresql", cluster.url(cluster.new_database()))


def _fill(store: Store, n: int = 5, *, key: bytes | None = KEY) -> Anchor:
    """n lines, two state writes, one more line: seq 1..n+3."""
    with store.journal(key=key) as j:
        for i in range(1, n + 1):
            j.record("vds.stop", TARGET, before={"state": "running", "i": i}, after={"state": "stopped"})
        j.set_state("boot:kvm1", {"boot_id": "aaa"})
        j.set_state("boot:kvm1", {"boot_id": "bbb"})
        j.record("vds.start", TARGET)
        return j.head()


# --- the journal -----------------------------------------------------------------------------
def test_round_trip_filters_and_verify(store: Store) -> None:
    with store.journal() as j:
        assert j.backend == store.backend
        first = j.record(
            "vds.stop", TARGET, before={"état": "running", "ключ": ["日本"]}, detail="§5.2", actor="a@b"
        )
        j.record("vds.start", TARGET, result="planned")
        j.record("vds.stop", "kvm2/VPS1001(78.90)")
        got = j.entries()
        assert [e.seq for e in got] == [1, 2, 3]
        assert got[0] == first and got[0].before == {"état": "running", "ключ": ["日本"]}
        assert got[1].prev_hash == got[0].hash and got[0].prev_hash == GENESIS_HASH
        assert got[0].ts.utcoffset() == dt.timedelta(0)
        assert [e.seq for e in j.entries(target=TARGET)] == [1, 2]
        assert [e.seq for e in j.entries(action="vds.stop")] == [1, 3]
        assert [e.seq for e in j.entries(limit=2)] == [2, 3]
        assert j.entries(since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == []
        report = j.verify()
        assert report.ok and report.checked == 3, report.problems
        assert j.head() == Anchor(seq=3, hash=got[2].hash)
    with store.journal(create=False) as j:  # reopened to read: the same lines
        assert j.entries() == got


EDITS: dict[str, tuple[tuple[str, ...], str]] = {
    "edited": (("UPDATE journal SET result = 'failed' WHERE seq = 2",), "seq 2: content does not match"),
    "edited JSON": (
        ("""UPDATE journal SET "before" = '{"state":"stopped"}' WHERE seq = 3""",),
        "seq 3: content does not match",
    ),
    "deleted": (("DELETE FROM journal WHERE seq = 3",), "seq 3: missing before seq 4 (line deleted)"),
    "reordered": (
        (
            "UPDATE journal SET seq = 100 WHERE seq = 2",
            "UPDATE journal SET seq = 2 WHERE seq = 3",
            "UPDATE journal SET seq = 3 WHERE seq = 100",
        ),
        "seq 3: chained after seq 1, not seq 2 (lines reordered)",
    ),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_verify_names_an_edited_deleted_or_reordered_line(store: Store, case: str) -> None:
    _fill(store, 3, key=None)
    statements, needle = EDITS[case]
    store.sql(*statements)
    with store.journal() as j:
        report = j.verify()
    assert not report.ok
    assert any(needle in p for p in report.problems), report.problems


def test_secrets_never_reach_the_database(store: Store) -> None:
    with store.journal() as j:
        entry = j.record(
            "vds.reinstall",
            TARGET,
            before={"root_password": PASSWORD, "nested": [{"cipassword": PASSWORD}]},
            after={"note": f"new password {PASSWORD} sent"},
            detail=f"handed out {PASSWORD}",
            secrets=[PASSWORD],
        )
        j.set_state("vds:VPS1234(34.56)", {"password": PASSWORD})
        assert j.verify().ok
    assert entry.detail == "handed out ***"
    dump = repr(store.rows("SELECT * FROM journal")) + repr(store.rows("SELECT * FROM journal_state"))
    assert PASSWORD not in dump and "***" in dump


def test_text_both_backends_store_alike(store: Store) -> None:
    """PostgreSQL's text holds no NUL and bounds the VARCHAR(255) columns: both backends agree."""
    with store.journal() as j:
        line = j.record("vds.stop", "kvm1/a\x00b", detail="x\x00y", after={"nul": "\x00"})
        assert (line.target, line.detail, line.after) == ("kvm1/a\ufffdb", "x\ufffdy", {"nul": "\x00"})
        with pytest.raises(InvalidInput, match=r"journal\.action"):
            j.record("x" * 256, TARGET)
        with pytest.raises(InvalidInput, match=r"journal\.state key"):
            j.set_state("k" * 256, {"x": 1})
        assert j.entries() == [line] and j.verify().ok


# --- the state ----------------------------------------------------------------------------------
def test_state_history_latest_states_and_the_chain(store: Store) -> None:
    with store.journal() as j:
        assert j.get_state("boot:kvm1") is None
        j.set_state("boot:kvm1", {"boot_id": "aaa"})
        j.set_states({"boot:kvm1": {"boot_id": "bbb"}, "ran:kvm1": {"running": ["VPS1(1.1)"]}})
        j.set_state("vds:VPS1(1.1)", {"blocked": True})
        j.set_state("vdsx:VPS3(1.1)", {"other": 1})
        j.set_state("100%_:k", {"x": 1})
        j.set_state("100a_:k", {"x": 2})  # LIKE wildcards in a prefix are literal
        assert j.get_state("boot:kvm1") == {"boot_id": "bbb"}
        assert [v for _, v in j.state_history("boot:kvm1")] == [{"boot_id": "aaa"}, {"boot_id": "bbb"}]
        assert j.latest_states("boot:") == {"boot:kvm1": {"boot_id": "bbb"}}
        assert j.latest_states("vds:") == {"vds:VPS1(1.1)": {"blocked": True}}
        assert j.latest_states("100%_") == {"100%_:k": {"x": 1}}
        assert j.entries() == []
        lines = j.entries(include_state=True)
        assert [(e.seq, e.target) for e in lines[:3]] == [(1, "boot:kvm1"), (2, "boot:kvm1"), (3, "ran:kvm1")]
        report = j.verify()
    assert report.ok and report.checked == 7 and report.state_rows_checked == 7, report.problems
    assert [r["seq"] for r in store.rows("SELECT seq FROM journal_state ORDER BY id")] == list(range(1, 8))


STATE_CASES = {
    "edited": (
        """UPDATE journal_state SET value = '{"status":"resolved"}' WHERE id = 2""",
        "state row 2 (outage:kvm1): differs from its chained line seq 3 (row edited)",
    ),
    "deleted": ("DELETE FROM journal_state WHERE id = 2", "seq 3: the state row this line wrote is missing"),
    "inserted unchained": (
        "INSERT INTO journal_state (key, ts, value) VALUES ('outage:kvm1', 'x', '{}')",
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
def test_a_tampered_state_row_is_named(store: Store, case: str) -> None:
    with store.journal() as j:
        j.set_state("outage:kvm1", {"status": "open"})  # seq 1, row 1
        j.record("vds.stop", TARGET)  # seq 2
        j.set_state("outage:kvm1", {"status": "open", "notified": {"c": ["x"]}})  # seq 3, row 2
        j.set_state("boot:kvm1", {"boot_id": "a"})  # seq 4, row 3
        assert j.verify().ok
    statement, needle = STATE_CASES[case]
    store.sql(statement)
    with store.journal() as j:
        problems = j.verify().problems
    assert any(needle in p for p in problems), problems


# --- the anchor and the key ------------------------------------------------------------------
ANCHOR_CASES: dict[str, tuple[Callable[[Store], None], str]] = {
    "truncate tail": (Store.truncate_tail, "tail truncated"),
    "empty table": (Store.empty_table, "table emptied"),
    "edit and rehash": (Store.edit_and_rehash, "chain rewritten"),
    "delete middle, renumber, rehash": (Store.delete_middle_and_rehash, "tail truncated"),
    "edit state row and its line, rehash": (Store.edit_state_and_rehash, "chain rewritten"),
}


@pytest.mark.parametrize("case", list(ANCHOR_CASES))
def test_tampering_the_chain_alone_misses_is_caught_by_the_anchor(store: Store, case: str) -> None:
    anchor = _fill(store)
    tamper, needle = ANCHOR_CASES[case]
    tamper(store)
    with store.journal(key=None) as j:
        assert j.verify().ok, "the chain alone should not see this (else the case tests nothing new)"
        report = j.verify(anchor)
    assert not report.ok
    assert any(needle in p for p in report.problems), report.problems


@pytest.mark.parametrize(
    "case", ["edit and rehash", "delete middle, renumber, rehash", "edit state row and its line, rehash"]
)
def test_tampering_is_caught_by_the_key_without_an_anchor(store: Store, case: str) -> None:
    _fill(store)
    ANCHOR_CASES[case][0](store)
    with store.journal(key=KEY) as j:
        report = j.verify()
    assert any("MAC does not match" in p for p in report.problems), report.problems


def test_a_keyed_journal_verifies_with_its_key_only(store: Store) -> None:
    anchor = _fill(store)
    with store.journal(key=KEY) as j:
        report = j.verify(anchor)
    assert report.ok and report.macs_checked == report.checked == 8, report.problems
    with store.journal(key=b"another key, 32 bytes long......") as j:
        assert j.verify().problems == [
            "no MAC matches the key (8 lines): a different key, or every keyed line forged"
        ]


# --- older journals: migrated by ALTER TABLE, no row rewritten (§11.6) ---------------------------
def _old_journal(store: Store) -> None:
    """The previous release's schema (no ``mac``, state rows not chained), made by SQLAlchemy
    on either backend, with three lines and two state rows."""
    old = sa.MetaData()
    sa.Table(
        "journal",
        old,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        *(sa.Column(c, sa.String(255), nullable=False) for c in ("ts", "actor", "action")),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    sa.Table(
        "journal_state",
        old,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False, index=True),
        sa.Column("ts", sa.String(40), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
    )
    engine = store._engine()
    old.create_all(engine)
    engine.dispose()
    prev = GENESIS_HASH
    for seq in (1, 2, 3):
        fields = {
            "seq": seq,
            "ts": f"2026-12-0{seq}T12:00:00.000000+00:00",
            "actor": "a@b",
            "action": "vds.stop",
            "target": TARGET,
            "before": {"state": "running"},
            "after": None,
            "result": "ok",
            "detail": f"line {seq}",
            "prev_hash": prev,
        }
        prev = _row_hash(fields)
        store.sql(
            'INSERT INTO journal (seq, ts, actor, action, target, "before", "after", result, detail, '
            "prev_hash, hash) VALUES (:seq, :ts, :actor, :action, :target, :before, :after, :result, "
            ":detail, :prev_hash, :hash)",
            **{**fields, "before": _canonical(fields["before"]), "hash": prev},
        )
    store.sql(
        "INSERT INTO journal_state (key, ts, value) "
        """VALUES ('boot:kvm1', '2026-12-01', '{"boot_id":"a"}')""",
        "INSERT INTO journal_state (key, ts, value) "
        """VALUES ('outage:kvm1', '2026-12-02', '{"s":"open"}')""",
    )


def test_an_old_journal_is_read_as_it_is_then_migrated_without_rewriting_a_row(store: Store) -> None:
    _old_journal(store)
    dump = (store.rows("SELECT * FROM journal ORDER BY seq"), store.rows("SELECT * FROM journal_state"))
    with store.journal(create=False) as j:
        report = j.verify()
        assert [e.detail for e in j.entries()] == ["line 1", "line 2", "line 3"]
    assert report.ok and "2 state row(s) from before the state was chained" in report.notes[0]
    assert (
        store.rows("SELECT * FROM journal ORDER BY seq"),
        store.rows("SELECT * FROM journal_state"),
    ) == dump

    with store.journal(key=KEY) as j:  # to write: ALTER TABLE, one journal.migrate line
        j.set_state("boot:kvm1", {"boot_id": "b"})
        report = j.verify()
        migrate = j.entries(action="journal.migrate")
        assert j.get_state("boot:kvm1") == {"boot_id": "b"}
    assert report.ok, report.problems
    assert [(e.seq, (e.after or {})["legacy_state_rows"]) for e in migrate] == [(4, 2)]
    lines = store.rows("SELECT seq, mac FROM journal ORDER BY seq")
    assert [r["mac"] is None for r in lines] == [True, True, True, False, False]
    kept = store.rows("SELECT id, key, ts, value FROM journal_state WHERE id <= 2 ORDER BY id")
    assert kept == [{k: r[k] for k in ("id", "key", "ts", "value")} for r in dump[1]]

    store.sql("""UPDATE journal_state SET value = '{"boot_id":"z"}' WHERE id = 1""")
    with store.journal(key=KEY) as j:
        assert j.verify().problems == [
            "state rows from before the chain: 2 now, not the 2 seq 4 recorded "
            "(rows edited, added or deleted)"
        ]


def test_a_database_without_a_journal_is_unreadable_and_left_alone(store: Store) -> None:
    store.sql("CREATE TABLE other (x INTEGER)")
    with pytest.raises(JournalUnreadable, match="no journal table"):
        store.journal(create=False)
    names = set(sa.inspect(sa.create_engine(store.url, poolclass=sa.pool.NullPool)).get_table_names())
    assert names == {"other"}


# --- writers in several processes -------------------------------------------------------------
PROCESSES, APPENDS = 4, 50


def _writer(url: str, name: str, start: Any) -> None:
    """Opens the (maybe not yet created) journal with the others, then 50 appends;
    every 10th is a state write of two keys."""
    start.wait(60)
    with Journal(url, key=KEY) as j:
        for i in range(APPENDS):
            if i % 10 == 9:
                j.set_states({f"boot:{name}": {"i": i}, f"ran:{name}": {"running": [i]}})
            else:
                j.record("vds.stop", f"{name}/{i}")


def test_writers_in_four_processes_keep_one_chain(store: Store) -> None:
    """Four processes create the schema and append at once: one chain, no seq lost or doubled.

    On PostgreSQL (READ COMMITTED) only the chain lock keeps two writers from reading
    the same head; on SQLite BEGIN IMMEDIATE does.
    """
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    procs = [ctx.Process(target=_writer, args=(store.url, f"p{n}", start)) for n in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    states_per_process = APPENDS // 10
    lines_per_process = APPENDS - states_per_process + 2 * states_per_process
    total = PROCESSES * lines_per_process
    with Journal(store.url, key=KEY) as j:
        report = j.verify()
        lines = j.entries(include_state=True)
        assert j.latest_states("ran:p0") == {"ran:p0": {"running": [49]}}
    assert report.ok, report.problems
    assert (report.checked, report.macs_checked) == (total, total)
    assert report.state_rows_checked == PROCESSES * states_per_process * 2
    assert [e.seq for e in lines] == list(range(1, total + 1))
    for n in range(PROCESSES):  # each writer's own lines in its order
        mine = [int(e.target.split("/")[1]) for e in lines if e.target.startswith(f"p{n}/")]
        assert mine == [i for i in range(APPENDS) if i % 10 != 9]


def test_on_postgresql_a_writer_waits_for_the_chain_lock(postgres: PostgresCluster) -> None:
    """The serialisation itself: while another session holds the chain's advisory lock, an
    append waits (it does not read the head and race); it goes on at that session's commit.

    Without the lock, the unique seq would still reject the second of two racing lines, and the
    retries hide it; this shows the writers queue instead.
    """
    import psycopg

    db = postgres.new_database()
    with Journal(postgres.url(db), key=None) as j:
        j.record("vds.stop", TARGET)
        done: list[int] = []
        with psycopg.connect(host=str(postgres.socket_dir), user=SUPERUSER, dbname=db) as other:
            other.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_CHAIN_LOCK,))
            writer = threading.Thread(target=lambda: done.append(j.record("vds.start", TARGET).seq))
            writer.start()
            writer.join(1.0)
            assert writer.is_alive() and done == []  # waiting on the lock
            assert [e.seq for e in j.entries()] == [1]
            other.commit()  # releases the transaction-level lock
            writer.join(30)
        assert done == [2] and j.verify().ok


# --- the audit's state ----------------------------------------------------------------------------
@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[TwoNodes]:
    made = TwoNodes(tmp_path)
    yield made
    for driver in made.drivers.values():
        driver.close()


def test_the_audit_keeps_its_boot_ids_and_what_ran_in_the_store(store: Store, nodes: TwoNodes) -> None:
    """The second audit reads the first one's boot ids and running VDS back from the store:
    the reboot and the VDS that ran before it are found (worker processes on the first run)."""
    with store.journal() as journal:
        first = nodes.audit(journal, processes=2)
        assert by_check(first) == {} and not any(n.rebooted for n in first.nodes)
        nodes.power_cycle("kvm1")
    with store.journal() as journal:  # a new job: nothing but the store carries over
        second = nodes.audit(journal)
        assert [n.node for n in second.nodes if n.rebooted] == ["kvm1"]
        assert by_check(second)["vds_down_after_reboot"] == sorted([nodes.hand, nodes.blocked])
        assert (journal.get_state("boot:kvm1") or {})["boot_id"] == "boot-kvm1-2"
        assert [e.action for e in journal.entries()] == ["audit.run", "audit.run"]
        assert journal.verify().ok


# --- PostgreSQL only: the URL and its password ---------------------------------------------------
def test_the_password_comes_from_a_file_or_the_environment_and_is_never_shown(
    postgres: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = postgres.new_database(owner=SECRET_USER)
    url = postgres.url(db, user=SECRET_USER)
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.delenv(PASSWORD_FILE_ENV, raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)

    with pytest.raises(JournalError, match=r"password authentication failed|no password") as info:
        Journal(url, key=None)
    with Journal(url, key=None, password_file=secret_file) as j:
        j.record("vds.stop", TARGET)
        assert SECRET not in j.url
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(secret_file))
    with Journal(url, key=None) as j:
        assert [e.seq for e in j.entries()] == [1]
    monkeypatch.delenv(PASSWORD_FILE_ENV)

    with_password = url.replace(f"{SECRET_USER}@", f"{SECRET_USER}:{SECRET}@")
    monkeypatch.setenv("IPSINFRA_JOURNAL", with_password)  # the environment may carry it
    with Journal(key=None) as j:
        assert j.verify().ok
        assert SECRET not in j.url and f"{SECRET_USER}:***@" in j.url
    wrong = url.replace(f"{SECRET_USER}@", f"{SECRET_USER}:{SECRET}x@")
    with pytest.raises(JournalError) as wrong_info:
        Journal(wrong, key=None)
    for exc in (info.value, wrong_info.value):
        assert SECRET not in str(exc) and SECRET not in repr(exc.__cause__)
    assert f"{SECRET_USER}:***@" in str(wrong_info.value)
    with pytest.raises(InvalidInput, match=r"^journal\.password_file: value .*: cannot read") as nofile:
        Journal(url, key=None, password_file=tmp_path / "absent")
    assert SECRET not in str(nofile.value)


def test_safe_url_and_url_secrets() -> None:
    assert safe_url("postgresql://u:p%40ss@db/j") == "postgresql://u:***@db/j"
    assert safe_url("postgresql://u@db/j?password=pw") == "postgresql://u@db/j?password=%2A%2A%2A"
    assert safe_url("po stgres://u:pw@db/j") == "po stgres://u:***@db/j"  # not parsable: masked all the same
    assert "pw" not in safe_url("weird+x://u:pw@h:port/j")
    assert url_secrets("postgresql://u:p%40ss@db/j") == ["p%40ss", "p@ss"]
    assert url_secrets("postgresql://u@db/j?password=pw") == ["pw"]
    assert url_secrets("postgresql://u@db/j") == url_secrets(None) == url_secrets("/var/j.sqlite3") == []


def test_a_plain_postgresql_url_uses_psycopg_and_a_dead_server_is_a_clear_error(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    with Journal(postgres.url(postgres.new_database(), driver="postgresql"), key=None) as j:
        assert j.url.startswith("postgresql+psycopg://") and j.record("vds.stop", TARGET).seq == 1
    dead = f"postgresql+psycopg://ipsinfra:{SECRET}@/x?host={tmp_path}"
    with pytest.raises(JournalError, match="cannot open") as info:
        Journal(dead, key=None)
    assert SECRET not in str(info.value) and "ipsinfra:***@" in str(info.value)


def test_the_modules_refuse_a_password_in_the_journal_option(tmp_path: Path) -> None:
    """``journal`` is logged with the task's arguments: a URL carrying a password fails the
    task with the password masked in all it returns; journal_password_file is passed on."""
    from tests.integration.test_audit_ran_before_reboot import module_utils

    common = module_utils()

    class Failed(Exception):
        pass

    class FakeModule:
        def __init__(self, **params: Any) -> None:
            self.params = {"journal": None, "journal_password_file": None, **params}
            self.no_log_values: set[str] = set()

        def fail_json(self, **kw: Any) -> None:
            raise Failed(kw["msg"])

    module = FakeModule(journal=f"postgresql+psycopg://u:{SECRET}@db/j")
    with pytest.raises(Failed, match="journal_password_file") as info:
        common.check_journal_options(module)
    assert SECRET not in str(info.value) and SECRET in module.no_log_values
    common.check_journal_options(FakeModule(journal="postgresql+psycopg://u@db/j"))
    before = os.environ.get(PASSWORD_FILE_ENV)
    with pytest.MonkeyPatch.context() as mp:
        # set, then deleted: recorded, so the variable the module sets is removed again on exit
        # (a later test's PostgreSQL URL would otherwise read this absent password file)
        mp.setenv(PASSWORD_FILE_ENV, "")
        mp.delenv(PASSWORD_FILE_ENV)
        common.check_journal_options(FakeModule(journal_password_file=str(tmp_path / "pw")))
        assert os.environ[PASSWORD_FILE_ENV] == str(tmp_path / "pw")
    assert os.environ.get(PASSWORD_FILE_ENV) == before
