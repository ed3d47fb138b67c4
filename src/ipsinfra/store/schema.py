"""The store's two tables, the same on every backend (SQLAlchemy Core).

``journal``: one row per line of the chain. ``journal_state``: key/value
state (the last boot id per node, what ran, outages, the port map per site);
a new value is a new row, history is never overwritten or deleted. Each state
row names (``seq``) the ``state.set`` line written in the same transaction, so
the chain covers it; rows from before that column existed have NULL there and
are covered by the digest in the ``journal.migrate`` line the migration wrote.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["journal_table", "metadata", "state_table"]

metadata = sa.MetaData()

journal_table = sa.Table(
    "journal",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(255), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    # JSON as canonical text, not a JSON column: a JSONB round trip reorders keys.
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    # HMAC-SHA256 of the hashed form, when written with a key. Nullable and added
    # by ALTER TABLE on older journals: no existing line is ever rewritten (§11.6).
    sa.Column("mac", sa.String(64), nullable=True),
)
sa.Index("ix_journal_target", journal_table.c.target)
sa.Index("ix_journal_action", journal_table.c.action)

state_table = sa.Table(
    "journal_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), nullable=False, index=True),
    sa.Column("ts", sa.String(40), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=True),
)
