"""The state store as a package (issue 17 part 5): one Backend interface, a SQLite and a
PostgreSQL backend, the journal on top, and ``ipsinfra.journal`` still importable.

The golden values below were computed with ``ipsinfra/journal.py`` as it was before the
split: a journal written then must verify now, so its canonical form, hashes, MACs, state
digest and PostgreSQL lock id may never change.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import sqlalchemy as sa

import ipsinfra.journal as compat
import ipsinfra.store as store
from ipsinfra.store.backend import Backend, OtherBackend, backend_for
from ipsinfra.store.chain import legacy_digest, row_hash, row_mac
from ipsinfra.store.postgres import CHAIN_LOCK, PostgresBackend
from ipsinfra.store.sqlite import SQLiteBackend

ROW = {
    "seq": 7,
    "ts": "2026-12-07T01:00:00.123456+00:00",
    "actor": "shift@ctl1",
    "action": "vds.stop",
    "target": "kvm1/VPS1234(34.56)",
    "before": {"state": "running", "ключ": ["日本", 1, None, True]},
    "after": None,
    "result": "ok",
    "detail": "§5.2",
    "prev_hash": "ab" * 32,
}


def test_golden_hash_mac_digest_and_lock_id_are_those_of_the_journal_before_the_split() -> None:
    assert row_hash(ROW) == "bf60463e614c75a47ec20f80be8dafac34c753e0e3fdfc336d27c2bbf78ad4bf"
    assert row_mac(b"0123456789abcdef-golden", ROW) == (
        "832dba21d432b93ed93bf7d913c6a80121b92f08731ece981e8bec6699b92e5a"
    )
    legacy = [{"id": 1, "key": "boot:kvm1", "ts": "2026-12-01", "value": '{"boot_id":"a"}'}]
    assert legacy_digest(legacy) == "fe8bc58b691412aafb63519937ff3f7b934a64096914e402e105cf80177c2a8b"
    assert CHAIN_LOCK == -7136339332159708633  # writers of both releases queue on one lock


def test_ipsinfra_journal_re_exports_the_store() -> None:
    for name in compat.__all__:
        assert getattr(compat, name) is not None, name
    for name in store.__all__:
        if hasattr(compat, name):
            assert getattr(compat, name) is getattr(store, name), name
    assert compat.Journal is store.Journal and compat.JournalEntry is store.JournalEntry
    # the private names tests (tests/unit/journal_tamper.py) import from the old module
    assert compat._row_hash is row_hash and compat._PG_CHAIN_LOCK == CHAIN_LOCK
    for name in ("_canonical", "_hash_fields", "_hashed_bytes", "_row_mac", "GENESIS_HASH"):
        assert callable(getattr(compat, name)) or name == "GENESIS_HASH"


@pytest.mark.parametrize(
    ("url", "cls", "name"),
    [
        ("sqlite:////tmp/x/j.sqlite3", SQLiteBackend, "sqlite"),
        ("postgresql+psycopg://ipsinfra@db1/j", PostgresBackend, "postgresql"),
        ("mysql+pymysql://u@db1/j", OtherBackend, "mysql"),
    ],
)
def test_one_backend_per_database(url: str, cls: type[Backend], name: str) -> None:
    backend = backend_for(sa.make_url(url))
    assert type(backend) is cls and isinstance(backend, Backend) and backend.name == name


def test_the_backend_interface_is_abstract_and_each_module_does_one_job() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Backend(sa.make_url("sqlite://"))  # type: ignore[abstract]
    assert {m for m in Backend.__abstractmethods__} == {"make_engine", "lock_chain"}
    sizes = {}
    for module in ("urls", "values", "chain", "schema", "backend", "sqlite", "postgres", "journal"):
        source = importlib.import_module(f"ipsinfra.store.{module}").__file__
        assert source is not None
        with open(source, encoding="utf-8") as fh:
            sizes[module] = sum(1 for _ in fh)
    assert max(sizes.values()) <= 600, sizes  # STYLE.md: past ~600 lines it is probably two modules


def test_sqlite_says_a_missing_file_is_absent_and_postgres_never_does(tmp_path: Path) -> None:
    missing = backend_for(sa.make_url(f"sqlite:///{tmp_path}/none.sqlite3"))
    assert missing.absent() == f"journal {tmp_path}/none.sqlite3: no such file (reading creates none)"
    assert backend_for(sa.make_url("sqlite://")).absent() is None  # in memory
    assert backend_for(sa.make_url("postgresql+psycopg://u@db1/j")).absent() is None
