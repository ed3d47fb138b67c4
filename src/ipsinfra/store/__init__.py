"""The state store (§11.6): one hash-chained journal of every action, and the state the next run needs.

One interface, two backends: a SQLite file by default, PostgreSQL by URL
(``postgresql+psycopg://ipsinfra@db.example/ipsinfra``) for AWX and several
controllers. The journal, the audit's state (boot ids, what ran), outages,
cancellations and the port map (``portmap:<site>``) all live behind it.

One job per module:

* :mod:`~ipsinfra.store.urls`: where the store is, its password, masked URLs;
* :mod:`~ipsinfra.store.values`: redaction and text both backends store alike;
* :mod:`~ipsinfra.store.chain`: canonical form, hashes, MACs, anchors, the verification walk;
* :mod:`~ipsinfra.store.schema`: the two tables;
* :mod:`~ipsinfra.store.backend`: the :class:`Backend` interface, with
  :mod:`~ipsinfra.store.sqlite` and :mod:`~ipsinfra.store.postgres`;
* :mod:`~ipsinfra.store.journal`: :class:`Journal`, on top of them.

``ipsinfra.journal`` re-exports the same names for code written before the split.
"""

from __future__ import annotations

from ipsinfra.store.backend import Backend, backend_for
from ipsinfra.store.chain import (
    GENESIS_HASH,
    KEY_ENV,
    KEY_FILE_ENV,
    STATE_ACTION,
    Anchor,
    VerifyReport,
    load_key,
    parse_anchor,
)
from ipsinfra.store.errors import JournalNotFound, JournalTableMissing, JournalUnreadable
from ipsinfra.store.journal import FROM_ENV, Journal, JournalEntry, default_actor
from ipsinfra.store.postgres import PostgresBackend
from ipsinfra.store.sqlite import SQLiteBackend
from ipsinfra.store.urls import (
    JOURNAL_ENV,
    PASSWORD_FILE_ENV,
    configured_url,
    default_journal_url,
    safe_url,
    url_secrets,
)
from ipsinfra.store.values import redact

__all__ = [
    "FROM_ENV",
    "GENESIS_HASH",
    "JOURNAL_ENV",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "PASSWORD_FILE_ENV",
    "STATE_ACTION",
    "Anchor",
    "Backend",
    "Journal",
    "JournalEntry",
    "JournalNotFound",
    "JournalTableMissing",
    "JournalUnreadable",
    "PostgresBackend",
    "SQLiteBackend",
    "VerifyReport",
    "backend_for",
    "configured_url",
    "default_actor",
    "default_journal_url",
    "load_key",
    "parse_anchor",
    "redact",
    "safe_url",
    "url_secrets",
]
