"""The shared backend: PostgreSQL through psycopg 3, writers serialised by an advisory lock.

Several controllers (AWX jobs, a shift's laptop) write one chain: under READ
COMMITTED two writers could read the same head, so each holds a
transaction-level advisory lock while it appends; the head read after it sees
the last commit, and COMMIT or ROLLBACK releases it (a crash never leaves it
behind). The server's views name who holds it (``application_name``).
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ipsinfra.store.backend import Backend, fork_safe

__all__ = ["CHAIN_LOCK", "PostgresBackend"]

# The advisory lock every PostgreSQL writer of the chain holds until its commit:
# one 64-bit id, the same in every process and release.
CHAIN_LOCK = int.from_bytes(hashlib.sha256(b"ipsinfra.journal chain").digest()[:8], "big", signed=True)


class PostgresBackend(Backend):
    """``postgresql+psycopg://user@host/db`` (``postgresql://`` is read as psycopg 3)."""

    def make_engine(self) -> Engine:
        # A dead server fails the job in seconds, not at the TCP timeout; the
        # server's views name who holds the chain lock. The URL's own values win.
        connect_args: dict[str, Any] = {
            k: v
            for k, v in {"connect_timeout": 10, "application_name": "ipsinfra"}.items()
            if k not in self.url.query
        }
        engine = sa.create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
        fork_safe(engine)
        return engine

    def lock_chain(self, conn: Connection) -> None:
        """Queue behind the other writers until this transaction ends."""
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK)))
