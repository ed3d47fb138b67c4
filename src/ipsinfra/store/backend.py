"""The one interface every database behind the store implements.

A :class:`Backend` owns what differs between databases: how the engine is made
(connection options, pool), how the chain's writers are serialised, and
whether a journal to read exists. What is the same everywhere (the schema, its
migration by ``ALTER TABLE``, reading which columns a database has) lives here
once. Two backends: :class:`~ipsinfra.store.sqlite.SQLiteBackend` (the
default, a file) and :class:`~ipsinfra.store.postgres.PostgresBackend` (by
URL, for AWX and several controllers). Any other SQLAlchemy dialect gets
:class:`OtherBackend`: no chain lock, the unique seq and the journal's retries
serialise its writers.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ipsinfra.store.errors import JournalTableMissing
from ipsinfra.store.schema import journal_table, metadata, state_table
from ipsinfra.store.urls import safe_url

__all__ = ["Backend", "OtherBackend", "backend_for", "db_reason", "fork_safe"]


class Backend(ABC):
    """A database behind the store, at ``url`` (already resolved: driver, password)."""

    def __init__(self, url: sa.URL) -> None:
        self.url = url

    @property
    def name(self) -> str:
        """``sqlite``, ``postgresql``... (SQLAlchemy's backend name)."""
        return self.url.get_backend_name()

    @property
    def safe_url(self) -> str:
        """The URL as messages show it, the password masked."""
        return safe_url(self.url)

    @abstractmethod
    def make_engine(self) -> Engine:
        """A new engine: connection options, pool, and a pooled connection never used across a fork."""

    @abstractmethod
    def lock_chain(self, conn: Connection) -> None:
        """Serialise the chain's writers until ``conn``'s transaction ends (commit or rollback)."""

    def absent(self) -> str | None:
        """Why the journal to read does not exist (reading creates nothing); None: it may exist."""
        return None

    def create_schema(self, conn: Connection) -> list[dict[str, Any]]:
        """Create the tables, or add the columns an older journal lacks; never rewrite a row (§11.6).

        Runs in the caller's transaction, under :meth:`lock_chain` (PostgreSQL's
        DDL is transactional: a failure leaves the old schema). Returns the
        state rows written before the state was chained, when this call added
        the state ``seq`` column: the caller records their count and digest in
        one ``journal.migrate`` line so ``verify`` covers them too.
        """
        metadata.create_all(conn)
        inspector = sa.inspect(conn)
        journal_cols = {c["name"] for c in inspector.get_columns(journal_table.name)}
        state_cols = {c["name"] for c in inspector.get_columns(state_table.name)}
        if "mac" in journal_cols and "seq" in state_cols:
            return []
        if "mac" not in journal_cols:
            conn.exec_driver_sql("ALTER TABLE journal ADD COLUMN mac VARCHAR(64)")
        if "seq" in state_cols:
            return []
        conn.exec_driver_sql("ALTER TABLE journal_state ADD COLUMN seq INTEGER")
        t = state_table
        return [
            dict(r._mapping)
            for r in conn.execute(sa.select(t.c.id, t.c.key, t.c.ts, t.c.value).order_by(t.c.id))
        ]

    def columns(self, engine: Engine) -> tuple[set[str], set[str]]:
        """The columns of ``journal`` and ``journal_state`` this database has (an old journal
        read as it is lacks some; no state table: empty). No journal table: JournalTableMissing."""
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names())
        if journal_table.name not in tables:
            raise JournalTableMissing(f"journal {self.safe_url}: no journal table here (not a journal)")
        journal_cols = {c["name"] for c in inspector.get_columns(journal_table.name)}
        state_cols = (
            {c["name"] for c in inspector.get_columns(state_table.name)}
            if state_table.name in tables
            else set()
        )
        return journal_cols, state_cols


class OtherBackend(Backend):
    """Any other SQLAlchemy dialect: no chain lock; the unique seq and the journal's retries serialise."""

    def make_engine(self) -> Engine:
        engine = sa.create_engine(self.url, pool_pre_ping=True)
        fork_safe(engine)
        return engine

    def lock_chain(self, conn: Connection) -> None:
        return None


def backend_for(url: sa.URL) -> Backend:
    """The backend for ``url``'s database."""
    from ipsinfra.store.postgres import PostgresBackend
    from ipsinfra.store.sqlite import SQLiteBackend

    backends: dict[str, type[Backend]] = {"sqlite": SQLiteBackend, "postgresql": PostgresBackend}
    return backends.get(url.get_backend_name(), OtherBackend)(url)


def db_reason(exc: SQLAlchemyError) -> str:
    """A short, password-free reason: the driver's first line (``file is not a database``), or the class."""
    orig = getattr(exc, "orig", None)
    text = str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() else ""
    name = exc.__class__.__name__
    return f"{name}: {text[:160]}" if text else name


def fork_safe(engine: Engine) -> None:
    """A pooled connection is never used by a forked child (the audit forks workers
    after reading the state): there it is dropped and a new one made (SQLAlchemy's recipe)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pid") != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise sa.exc.DisconnectionError(
                f"connection made in process {record.info.get('pid')}, used in {os.getpid()}"
            )
