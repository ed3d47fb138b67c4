"""The default backend: one SQLite file, writers serialised by ``BEGIN IMMEDIATE``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ipsinfra.store.backend import Backend, fork_safe

__all__ = ["SQLiteBackend", "sqlite_file"]


class SQLiteBackend(Backend):
    """A SQLite file (``sqlite:///path``). Writers from many threads and processes queue
    on the database's write lock, taken at BEGIN; a busy database is waited on for 60 s."""

    def make_engine(self) -> Engine:
        engine = sa.create_engine(self.url, connect_args={"timeout": 60})
        fork_safe(engine)

        # pysqlite's own transaction handling defers BEGIN; take the write lock at
        # BEGIN instead (the SQLAlchemy docs' recipe), so two appenders never read
        # the same head.
        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA busy_timeout = 60000")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def lock_chain(self, conn: Connection) -> None:
        """``BEGIN IMMEDIATE`` (:meth:`make_engine`) already holds the write lock."""
        return None

    def absent(self) -> str | None:
        path = sqlite_file(self.url)
        if path is not None and not path.is_file():
            return f"journal {path}: no such file (reading creates none)"
        return None


def sqlite_file(url: sa.URL) -> Path | None:
    """The file a ``sqlite://`` URL names; None for other backends, memory and URI forms."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database)
